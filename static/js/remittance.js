// patientdesk remittance: the denial queue's bar chart of counts per cause (Chart.js, from the
// JSON in the canvas's data-chart-spec attribute) and the "tick every denial" box. No inline
// scripts (CSP).
(function () {
  "use strict";

  function drawChart(canvas) {
    if (typeof window.Chart === "undefined" || !canvas.dataset.chartSpec) return;
    const spec = JSON.parse(canvas.dataset.chartSpec);
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: spec.labels,
        datasets: [{ label: "Denials", data: spec.counts, backgroundColor: "#D55E00" }],
      },
      options: {
        indexAxis: "y",
        animation: false,
        plugins: { legend: { display: false } },
        scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  }

  function wireTickAll() {
    const all = document.getElementById("tick-all");
    if (!all) return;
    all.addEventListener("change", function () {
      document.querySelectorAll('input[name="denials"]').forEach(function (box) {
        box.checked = all.checked;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas[data-denial-chart]").forEach(drawChart);
    wireTickAll();
  });
})();
