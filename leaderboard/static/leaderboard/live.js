// Live status without reloading: every 2 s, ask for the state of the rows still queued or
// running; stop once none is. On a result page ([data-reload-when-done]) reload when grading
// ends, so the full result is rendered by the server. Needs poll.js.
(function () {
  "use strict";
  // The catalogue (/jsi18n/, loaded first by base.html) defines gettext; without it, English.
  var gettext = window.gettext || function (text) { return text; };

  function pendingIds(root) {
    return Array.prototype.map.call(
      root.querySelectorAll("[data-id][data-pending='1']"),
      function (el) { return el.getAttribute("data-id"); }
    );
  }

  function render(el, state) {
    el.setAttribute("data-pending", state.pending ? "1" : "0");
    el.querySelectorAll("[data-field]").forEach(function (cell) {
      var field = cell.getAttribute("data-field");
      if (field === "status") {
        cell.textContent = state.status_label;
        cell.className = "status status-" + state.status;
      } else if (field === "passed") {
        cell.textContent = state.status === "graded"
          ? (state.passed ? gettext("passed") : gettext("not passed"))
          : (state.status === "failed" ? gettext("see details") : "");
      } else if (field in state) {
        cell.textContent = state[field] === null ? "" : String(state[field]);
      }
    });
  }

  function follow(root) {
    window.pollJson(
      function () {
        var ids = pendingIds(root);
        if (!ids.length) { return null; }
        return root.getAttribute("data-live") + "?" + ids.map(function (id) {
          return "id=" + encodeURIComponent(id);
        }).join("&");
      },
      function (data) {
        var finished = false;
        data.submissions.forEach(function (state) {
          var el = root.querySelector("[data-id='" + state.id + "']");
          if (!el) { return; }
          if (!state.pending) { finished = true; }
          render(el, state);
        });
        if (finished && root.hasAttribute("data-reload-when-done")) {
          window.location.reload();
          return false;
        }
        return true;
      }
    );
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(follow);
  });
})();
