// Times are rendered in the course's timezone; when the reader's browser is elsewhere, add
// their own wall-clock time next to it (a deadline of 23:59:59 in Berlin is 17:59:59 in New York).
(function () {
  "use strict";
  // The catalogue (/jsi18n/, loaded first by base.html) defines these; without it, English.
  var gettext = window.gettext || function (text) { return text; };
  var interpolate = window.interpolate || function (text, values) {
    return values.reduce(function (out, value) { return out.replace("%s", value); }, text);
  };
  document.addEventListener("DOMContentLoaded", function () {
    var zone;
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
    // In the page's language (<html lang>), like the server-rendered time beside it.
    var format = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
      weekday: "short", day: "2-digit", month: "short", year: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
    });
    document.querySelectorAll("time[data-localize]").forEach(function (el) {
      var moment = new Date(el.getAttribute("datetime"));
      if (isNaN(moment.getTime())) { return; }
      var mine = format.format(moment);
      el.title = interpolate(gettext("your time: %s (%s)"), [mine, zone]);
      // Only spell it out when the offset differs from the one shown.
      var courseOffset = (el.getAttribute("datetime").match(/([+-]\d\d:\d\d|Z)$/) || [""])[0];
      var localOffset = -moment.getTimezoneOffset();
      var shown = courseOffset === "Z" || courseOffset === "+00:00" ? 0 : parseOffset(courseOffset);
      if (shown !== null && shown !== localOffset) {
        var span = document.createElement("span");
        span.className = "muted localtime";
        span.textContent = " " + interpolate(gettext("(your time: %s)"), [mine]);
        el.insertAdjacentElement("afterend", span);
      }
    });
  });

  function parseOffset(text) {
    var m = /^([+-])(\d\d):(\d\d)$/.exec(text);
    if (!m) { return null; }
    var minutes = parseInt(m[2], 10) * 60 + parseInt(m[3], 10);
    return m[1] === "-" ? -minutes : minutes;
  }
})();
