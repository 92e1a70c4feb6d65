// patientdesk: keyboard helpers. No inline scripts (CSP); behaviour hangs off data attributes.
(function () {
  "use strict";

  // "/" focuses the patient search box from anywhere (unless typing in a field).
  document.addEventListener("keydown", function (event) {
    const tag = (event.target && event.target.tagName) || "";
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(tag) || event.target.isContentEditable;
    if (event.key === "/" && !typing) {
      const box = document.querySelector("[data-search-box]");
      if (box) {
        event.preventDefault();
        box.focus();
        box.select();
      } else if (document.body.dataset.searchUrl) {
        window.location.href = document.body.dataset.searchUrl;
      }
    }
  });

  // Arrow keys move through search results; Enter opens the selected one.
  document.addEventListener("keydown", function (event) {
    const results = document.querySelector("[data-result-list]");
    if (!results || !["ArrowDown", "ArrowUp", "Enter"].includes(event.key)) return;
    const rows = Array.from(results.querySelectorAll("[data-result-url]"));
    if (!rows.length) return;
    let index = rows.findIndex((row) => row.getAttribute("aria-selected") === "true");
    if (event.key === "Enter") {
      if (index >= 0 && (event.target.matches("[data-search-box]") || event.target === rows[index])) {
        event.preventDefault();
        window.location.href = rows[index].dataset.resultUrl;
      }
      return;
    }
    event.preventDefault();
    if (index >= 0) rows[index].setAttribute("aria-selected", "false");
    index = event.key === "ArrowDown" ? Math.min(rows.length - 1, index + 1) : Math.max(0, index - 1);
    rows[index].setAttribute("aria-selected", "true");
    rows[index].scrollIntoView({ block: "nearest" });
  });

  // Clicking a result row opens it.
  document.addEventListener("click", function (event) {
    const row = event.target.closest("[data-result-url]");
    if (row && !event.target.closest("a, button")) window.location.href = row.dataset.resultUrl;
  });

  // Autofocus the first field with an error after a form re-renders.
  function focusFirstError(root) {
    const invalid = (root || document).querySelector(".is-invalid");
    if (invalid) invalid.focus();
  }
  document.addEventListener("DOMContentLoaded", function () { focusFirstError(document); });
  document.addEventListener("htmx:afterSwap", function (event) { focusFirstError(event.target); });
})();
