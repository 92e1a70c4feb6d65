// patientdesk: patient screens. No inline scripts (CSP); behaviour hangs off data attributes.
(function () {
  "use strict";

  // A panel that must be read first (the duplicate warning at registration) takes the focus,
  // so keyboard and screen-reader users meet it before the form.
  document.addEventListener("DOMContentLoaded", function () {
    const panel = document.querySelector("[data-focus-on-load]");
    if (panel) {
      panel.focus();
      panel.scrollIntoView({ block: "start" });
    }
  });
})();
