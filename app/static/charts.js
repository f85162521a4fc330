// Learning-curve charts shared by the job page and the comparison: the log/linear cost axis
// (remembered in localStorage), the best-iteration marker, the R² and epoch labels, and the
// exploded-run note. The same rules as the server's images (app/plots.py).
"use strict";

const RUN_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const TRAIN_COLOR = "#1f77b4";
const VALIDATION_COLOR = "#ff7f0e";
const BEST_COLOR = "#2e7d32";
// A cost this many times its first value (or non-finite) means the run blew up.
const EXPLODED_FACTOR = 1e6;

// Log is the default for cost: a cost falling from 2.5 to 1e-6 looks flat on a linear axis.
function costScale() {
  return localStorage.getItem("yscale") === "linear" ? "linear" : "log";
}

function metricLabel(metric, task) {
  return metric === "accuracy" && task === "regression" ? "R²" : metric;
}

// Mini-batch runs record one point per epoch; full-batch runs one per gradient step.
function xLabel(hyperparameters) {
  return hyperparameters && hyperparameters.batch_size ? "epoch" : "iteration";
}

function isFiniteNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

// The lowest validation cost, or the lowest training cost without validation.
function bestIteration(points) {
  const key = points.some((p) => isFiniteNumber(p.val_cost)) ? "val_cost" : "cost";
  let best = null;
  for (const point of points) {
    if (isFiniteNumber(point[key]) && (best === null || point[key] < best[key])) best = point;
  }
  return best ? best.iteration : null;
}

// A one-line note when the training cost exploded, else null. JSON carries no Infinity or
// NaN, so a recorded non-finite cost arrives as null.
function explosion(points) {
  const costs = points.filter((p) => "cost" in p).map((p) => p.cost);
  if (!costs.length) return null;
  if (costs.some((c) => !isFiniteNumber(c))) return "Cost exploded: it became non-finite (the run diverged).";
  const first = costs[0];
  const worst = Math.max(...costs);
  if (first > 0 && worst > EXPLODED_FACTOR * first) {
    return `Cost exploded: ${worst.toPrecision(3)}, ${(worst / first).toPrecision(2)}× its first value ${first.toPrecision(3)}.`;
  }
  return null;
}

// Draws a dashed vertical line at options.plugins.bestLine.iteration.
const BEST_LINE = {
  id: "bestLine",
  afterDatasetsDraw(chart, _args, options) {
    if (options.iteration === null || options.iteration === undefined) return;
    const { ctx, chartArea, scales } = chart;
    const x = scales.x.getPixelForValue(options.iteration);
    if (!(x >= chartArea.left && x <= chartArea.right)) return;
    ctx.save();
    ctx.strokeStyle = BEST_COLOR;
    ctx.fillStyle = BEST_COLOR;
    ctx.setLineDash([5, 4]);
    ctx.beginPath();
    ctx.moveTo(x, chartArea.top);
    ctx.lineTo(x, chartArea.bottom);
    ctx.stroke();
    ctx.font = "12px system-ui, sans-serif";
    ctx.textAlign = x > (chartArea.left + chartArea.right) / 2 ? "right" : "left";
    ctx.fillText(` best: ${options.iteration} `, x, chartArea.top + 12);
    ctx.restore();
  },
};

function lineDataset(label, color, extra = {}) {
  return {
    label, data: [], borderColor: color, backgroundColor: color, borderWidth: 1.5, pointRadius: 0, ...extra,
  };
}

function chartTitle(chart) {
  const log = chart.$metric === "cost" && costScale() === "log";
  return log ? `${chart.$label} (log scale)` : chart.$label;
}

// metric: "cost" or "accuracy"; the cost axis follows the remembered scale, accuracy/R²
// stays linear. Tooltips list every series at the hovered iteration (train and validation).
function makeCurveChart(canvasId, metric, { task = null, xTitle = "iteration", datasets = [] } = {}) {
  const label = metricLabel(metric, task);
  const chart = new Chart(document.getElementById(canvasId), {
    type: "line",
    data: { datasets },
    plugins: [BEST_LINE],
    options: {
      animation: false,
      parsing: false,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      plugins: {
        title: { display: true, text: label },
        legend: { labels: { boxWidth: 24, boxHeight: 3 } },
        bestLine: { iteration: null },
      },
      scales: {
        x: { type: "linear", title: { display: true, text: xTitle } },
        y: {
          type: metric === "cost" && costScale() === "log" ? "logarithmic" : "linear",
          title: { display: true, text: label },
        },
      },
    },
  });
  chart.$metric = metric;
  chart.$label = label;
  chart.options.plugins.title.text = chartTitle(chart);
  return chart;
}

function applyCostScale(chartList) {
  for (const chart of chartList) {
    if (chart.$metric !== "cost") continue;
    // A fresh axis object: changing only `type` would keep the log axis's tick formatter.
    chart.options.scales.y = {
      type: costScale() === "log" ? "logarithmic" : "linear",
      title: { display: true, text: chart.$label },
    };
    chart.options.plugins.title.text = chartTitle(chart);
    chart.update("none");
  }
}

function markBest(chartList, iteration) {
  for (const chart of chartList) chart.options.plugins.bestLine.iteration = iteration;
}

// Every "log-scale cost" checkbox shows and sets the one remembered choice.
function setupLogToggles(onChange) {
  const toggles = document.querySelectorAll(".log-toggle");
  for (const toggle of toggles) {
    toggle.checked = costScale() === "log";
    toggle.addEventListener("change", () => {
      localStorage.setItem("yscale", toggle.checked ? "log" : "linear");
      for (const other of toggles) other.checked = toggle.checked;
      onChange();
    });
  }
}
