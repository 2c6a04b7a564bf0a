// The staff health page: every 3 s, fetch the page's body again and swap it in, so workers,
// queues and failures stay current without a reload. Keeps trying after a hiccup. The body is
// a polite live region: it is swapped only when something changed, so a screen reader hears
// about changes, not a repeat of the tables every 3 s.
(function () {
  "use strict";
  var INTERVAL = 3000;

  var shown = null;

  function refresh(root) {
    fetch(root.getAttribute("data-refresh"), { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.text();
      })
      .then(function (html) {
        if (html !== shown) {
          shown = html;
          root.innerHTML = html;
        }
        window.setTimeout(function () { refresh(root); }, INTERVAL);
      })
      .catch(function () { window.setTimeout(function () { refresh(root); }, INTERVAL * 3); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("health");
    if (root) { window.setTimeout(function () { refresh(root); }, INTERVAL); }
  });
})();
