// pollJson(nextUrl, handle): every 2 s, fetch nextUrl() as JSON and pass it to handle(data).
// Stops when nextUrl() returns null (nothing left to follow) or handle() returns false; after a
// hiccup (server restart, network) it keeps trying, a little slower. Shared by the student's
// live status (live.js) and the admin's live re-grade progress (regrade_progress.js).
window.pollJson = function (nextUrl, handle) {
  "use strict";
  var INTERVAL = 2000;

  function tick() {
    var url = nextUrl();
    if (url === null) { return; }
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (data) {
        if (handle(data) !== false) { window.setTimeout(tick, INTERVAL); }
      })
      .catch(function () { window.setTimeout(tick, INTERVAL * 3); });
  }

  window.setTimeout(tick, INTERVAL);
};
