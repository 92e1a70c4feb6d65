// patientdesk audit report. No inline scripts (CSP): behaviour hangs off data attributes.
(function () {
  "use strict";

  // The report form is an htmx form (its results swap in place). A button marked
  // data-plain-submit (the CSV export) must instead submit the same fields as an ordinary POST
  // to its formaction, so the browser downloads the file. HTMLFormElement.submit() fires no
  // "submit" event, so htmx does not intercept it.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-plain-submit]");
    if (!button || !button.form) return;
    event.preventDefault();
    event.stopPropagation();
    const form = button.form;
    const action = form.getAttribute("action");
    form.setAttribute("action", button.getAttribute("formaction"));
    HTMLFormElement.prototype.submit.call(form);
    form.setAttribute("action", action);
  }, true);
})();
