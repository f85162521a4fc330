// The comparison of selected runs (overlaid curves) and the model page (versions, aliases, a
// predict form). Loaded before app.js, which owns routing and calls into these.
"use strict";

const COMPARE_POINTS = 1000;
let compareCharts = [];

// The hyperparameters whose values differ between the runs: what tells them apart.
function differingKeys(jobs) {
  const keys = new Set(jobs.flatMap((job) => Object.keys(job.hyperparameters || {})));
  return [...keys].filter((key) => new Set(jobs.map((job) => JSON.stringify((job.hyperparameters || {})[key]))).size > 1);
}

function runLabel(job, keys) {
  const parts = keys.map((key) => `${key}=${JSON.stringify((job.hyperparameters || {})[key] ?? null)}`);
  return [job.model_name, ...parts].join(" ") || job.id.slice(0, 8);
}

// Every selected run's curves on one cost chart and one accuracy chart: train solid,
// validation dashed, one colour per run.
async function compareSelected() {
  const ids = [...jobsView.selected];
  let jobs;
  try {
    jobs = await Promise.all(ids.map((id) => api(`/jobs/${id}?max_points=${COMPARE_POINTS}`)));
  } catch (error) {
    showMessage(`Could not load the runs: ${error.message}`, true);
    return;
  }
  for (const chart of compareCharts) chart.destroy();
  const keys = differingKeys(jobs);
  const tasks = new Set(jobs.map((job) => (job.hyperparameters || {}).task));
  const task = tasks.size === 1 ? [...tasks][0] : null;
  const anyEpochs = jobs.some((job) => (job.hyperparameters || {}).batch_size);
  const allEpochs = jobs.every((job) => (job.hyperparameters || {}).batch_size);
  const xTitle = allEpochs ? "epoch" : anyEpochs ? "iteration or epoch" : "iteration";
  const series = (metric, trainKey, validationKey) => jobs.flatMap((job, index) => {
    const color = RUN_COLORS[index % RUN_COLORS.length];
    const label = runLabel(job, keys);
    const line = (key, suffix, extra) => ({
      ...lineDataset(`${label} ${suffix}`, color, extra),
      runId: job.id,
      data: job.history.filter((p) => p[key] !== undefined && p[key] !== null).map((p) => ({ x: p.iteration, y: p[key] })),
    });
    const lines = [line(trainKey, "train", {})];
    if (job.history.some((p) => p[validationKey] !== undefined)) lines.push(line(validationKey, "validation", { borderDash: [6, 3] }));
    return lines;
  });
  document.getElementById("compare").hidden = false;
  document.getElementById("compare-count").textContent = `(${jobs.length} runs)`;
  compareCharts = [
    makeCurveChart("compare-cost-chart", "cost", { task, xTitle, datasets: series("cost", "cost", "val_cost") }),
    makeCurveChart("compare-accuracy-chart", "accuracy", { task, xTitle, datasets: series("accuracy", "accuracy", "val_accuracy") }),
  ];
  document.getElementById("compare").scrollIntoView();
}

// ---- model page -----------------------------------------------------------------------------

async function showModel(name) {
  document.getElementById("model-name").textContent = name;
  document.getElementById("predict-result").textContent = "";
  delete document.getElementById("predict-result").dataset.predictions;
  // The page is reused from model to model: nothing of the last one may show under this name.
  document.getElementById("model-aliases").textContent = "";
  document.querySelector("#versions-table tbody").replaceChildren();
  document.querySelector("#predict-form select[name=target]").replaceChildren();
  let entry;
  try {
    entry = await api(`/models/names/${encodeURIComponent(name)}`);
  } catch (error) {
    if (location.hash !== `#/models/${encodeURIComponent(name)}`) return; // the user has moved on
    document.getElementById("model-page").hidden = true;
    showMessage(`Could not load this model: ${error.message}`, true);
    return;
  }
  const aliases = Object.entries(entry.aliases);
  document.getElementById("model-aliases").textContent = aliases.length
    ? `Aliases: ${aliases.map(([alias, version]) => `${alias} → v${version}`).join(", ")}`
    : "No aliases yet (PUT /models/names/{name}/aliases/{alias} sets one).";
  fillTable("versions-table", entry.versions, (row, v) => {
    cell(row, `v${v.version}`);
    cell(row, formatTime(v.created_at));
    cell(row, formatNumber(v.metrics.accuracy)).className = "num";
    cell(row, formatNumber(v.metrics.cost)).className = "num";
    cell(row, formatNumber(v.metrics.val_cost)).className = "num";
    cell(row, v.id, { code: true });
  });
  const select = document.querySelector("#predict-form select[name=target]");
  select.replaceChildren(
    new Option("latest version", ""),
    ...aliases.map(([alias, version]) => new Option(`@${alias} (v${version})`, `@${alias}`)),
    ...entry.versions.map((v) => new Option(`v${v.version}`, `v${v.version}`)),
  );
}

// Rows as typed: one per line, numbers separated by commas or spaces.
function parseRows(text) {
  return text.split("\n").map((line) => line.trim()).filter(Boolean)
    .map((line) => line.split(/[\s,;]+/).filter(Boolean).map(Number));
}

async function predict(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const output = document.getElementById("predict-result");
  const body = { model: document.getElementById("model-name").textContent, instances: parseRows(form.get("rows")) };
  const target = form.get("target");
  if (target.startsWith("@")) body.alias = target.slice(1);
  else if (target.startsWith("v")) body.version = Number(target.slice(1));
  if (!body.instances.length) {
    output.textContent = "Type at least one row of feature values.";
    return;
  }
  try {
    const answer = await api("/predict", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    // One line per row: the prediction, then the class probabilities when there are some.
    output.dataset.predictions = JSON.stringify(answer.predictions);
    output.textContent = answer.predictions.map((prediction, i) => {
      const proba = answer.probabilities ? `  (probabilities ${answer.probabilities[i].map(formatNumber).join(", ")})` : "";
      return `row ${i + 1}: ${JSON.stringify(prediction)}${proba}`;
    }).join("\n");
  } catch (error) {
    output.textContent = `Prediction failed: ${error.message}`;
  }
}
