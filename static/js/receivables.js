// patientdesk receivables: draws the A/R aging and KPI trend charts (Chart.js) from the JSON in
// each canvas's data-chart-spec attribute (htmx drops <script> blocks from swapped content, so
// no json_script). No inline scripts (CSP); redrawn after htmx swaps.
(function () {
  "use strict";

  // Colour-blind-safe palette (Okabe-Ito), youngest bucket first.
  const COLOURS = ["#009E73", "#56B4E9", "#E69F00", "#D55E00", "#CC79A7"];
  const charts = new WeakMap();

  function draw(canvas) {
    if (typeof window.Chart === "undefined") return;
    if (!canvas.dataset.chartSpec) return;
    const spec = JSON.parse(canvas.dataset.chartSpec);
    const previous = charts.get(canvas);
    if (previous) previous.destroy();
    const stacked = spec.type === "aging";
    const datasets = spec.datasets.map(function (set, index) {
      const colour = COLOURS[index % COLOURS.length];
      return Object.assign({}, set, {
        backgroundColor: colour,
        borderColor: colour,
        spanGaps: true,
      });
    });
    const chart = new window.Chart(canvas, {
      type: stacked ? "bar" : "line",
      data: { labels: spec.labels, datasets: datasets },
      options: {
        maintainAspectRatio: false,
        animation: false,
        scales: {
          x: { stacked: stacked },
          y: { stacked: stacked, beginAtZero: true },
        },
      },
    });
    charts.set(canvas, chart);
  }

  function drawAll(root) {
    if (typeof window.Chart === "undefined") return;
    // Charts whose canvas htmx swapped out: release them.
    Object.values(window.Chart.instances || {}).forEach(function (chart) {
      if (!chart.canvas || !chart.canvas.isConnected) chart.destroy();
    });
    (root || document).querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawAll(document);
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    drawAll(event.target);
  });
})();
