// Live progress of re-grades on a challenge's (or a re-grade's) admin page: every 2 s, ask for
// the state of the batches still running and update their rows in place; stop once none is.
// Needs poll.js.
(function () {
  "use strict";

  function render(row, state) {
    row.setAttribute("data-running", state.status === "running" ? "1" : "0");
    row.querySelectorAll("[data-field]").forEach(function (cell) {
      var field = cell.getAttribute("data-field");
      if (field in state) { cell.textContent = state[field] === null ? "" : String(state[field]); }
    });
    var bar = row.querySelector("progress");
    if (bar) {
      bar.max = state.total;
      bar.value = state.done;
    }
    row.querySelectorAll("[data-action]").forEach(function (form) {
      form.hidden = !state[form.getAttribute("data-action")];
    });
  }

  function follow(root) {
    window.pollJson(
      function () {
        var rows = root.querySelectorAll("[data-batch][data-running='1']");
        if (!rows.length) { return null; }
        return root.getAttribute("data-regrade-progress") + "?" + Array.prototype.map.call(
          rows,
          function (row) { return "id=" + encodeURIComponent(row.getAttribute("data-batch")); }
        ).join("&");
      },
      function (data) {
        data.batches.forEach(function (state) {
          var row = root.querySelector("[data-batch='" + state.id + "']");
          if (row) { render(row, state); }
        });
      }
    );
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-regrade-progress]").forEach(follow);
  });
})();
