// On a phone, the wide tables in a `.table-scroll.cards` region read as one card per row
// (site.css): each cell gets its column's header as `data-label`, which the CSS shows before the
// value. The explicit roles keep the table a table for screen readers in browsers that drop a
// table's semantics once CSS changes its display. Without this script the table stays a table
// and scrolls inside its region.
(function () {
  "use strict";

  function label(table) {
    var headers = Array.prototype.map.call(
      table.querySelectorAll("thead th"),
      function (th) { return th.textContent.replace(/\s+/g, " ").trim(); }
    );
    table.setAttribute("role", "table");
    table.querySelectorAll("thead, tbody").forEach(function (group) {
      group.setAttribute("role", "rowgroup");
    });
    table.querySelectorAll("tr").forEach(function (tr) {
      tr.setAttribute("role", "row");
      var column = 0;
      Array.prototype.forEach.call(tr.cells, function (cell) {
        if (cell.tagName === "TH") {
          cell.setAttribute("role", "columnheader");
        } else {
          cell.setAttribute("role", "cell");
          // A cell across columns (an empty table's message) has no one header.
          if (cell.colSpan === 1 && headers[column]) {
            cell.setAttribute("data-label", headers[column]);
          }
        }
        column += cell.colSpan;
      });
    });
    table.classList.add("labelled");
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".cards > table").forEach(label);
  });
})();
