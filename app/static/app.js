// The dashboard's shell and job page: routing, and the job page whose curves grow
// live from the job's Server-Sent Events stream. The overview is in overview.js, the
// comparison and model page in pages.js, chart rules in charts.js. Plain JS, no build step.
"use strict";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const REFRESH_MS = 2000;
const REDRAW_MS = 100;
const RECONNECT_MS = 2000;
// A live chart that grew past this many points reopens its stream for a fresh thinned snapshot.
const MAX_LIVE_POINTS = 20000;

let refreshTimer = null;
let jobWatch = null;
let charts = [];

function cell(row, value, { code = false, link = null } = {}) {
  const td = row.insertCell();
  let node = td;
  if (link) {
    node = td.appendChild(document.createElement("a"));
    node.href = link;
  }
  if (code) node = node.appendChild(document.createElement("code"));
  node.textContent = value ?? "";
  return td;
}

function fillTable(id, items, addCells, emptyText = null) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren();
  for (const item of items) addCells(body.insertRow(), item);
  const empty = document.getElementById(id.replace("-table", "-empty"));
  if (empty) {
    empty.hidden = items.length > 0;
    if (emptyText) empty.textContent = emptyText;
  }
}

function formatNumber(value) {
  return typeof value === "number" ? value.toPrecision(4) : "";
}

function formatSeconds(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} m ${String(Math.round(seconds % 60)).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} m`;
}

function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

// Seconds from start to finish (or to now for a running job); null before it started.
function duration(job) {
  if (!job.started_at) return null;
  const end = job.finished_at ? new Date(job.finished_at) : new Date();
  return (end - new Date(job.started_at)) / 1000;
}

// ---- job page -------------------------------------------------------------------------------

function showJobState(state) {
  const status = document.getElementById("job-status");
  status.textContent = state.status;
  status.className = `status ${state.status}`;
  document.getElementById("job-progress").value = state.progress;
  if (state.n_iterations) {
    document.getElementById("job-iteration").textContent =
      `iteration ${state.iteration} of ${state.n_iterations}`;
  }
  document.getElementById("cancel-button").hidden = TERMINAL.has(state.status);
}

function showJobResult(job) {
  const result = document.getElementById("job-result");
  result.replaceChildren();
  if (job.error) result.textContent = `Error: ${job.error}`;
  else if (job.model_id) {
    result.append(`Model ${job.model_name}: `);
    const link = result.appendChild(document.createElement("a"));
    link.href = `#/models/${encodeURIComponent(job.model_name)}`;
    link.textContent = job.model_id;
  }
}

function fillList(id, entries) {
  const list = document.getElementById(id);
  list.replaceChildren();
  for (const [term, value] of entries) {
    if (value === null || value === undefined || value === "") continue;
    list.appendChild(document.createElement("dt")).textContent = term;
    list.appendChild(document.createElement("dd")).textContent = value;
  }
}

// Timings, hyperparameters and final/best metrics, from GET /jobs/{id} and the drawn curve.
function showJobDetails(job, points) {
  const wait = job.started_at ? (new Date(job.started_at) - new Date(job.created_at)) / 1000 : null;
  fillList("job-timings", [
    ["queued", formatTime(job.created_at)], ["started", formatTime(job.started_at)],
    ["finished", formatTime(job.finished_at)], ["queue wait", formatSeconds(wait)],
    ["duration", formatSeconds(duration(job))],
  ]);
  const d = job.dataset;
  const dataset = d ? `${d.name} · ${d.n_samples} rows × ${d.n_features} · uploaded ${formatTime(d.created_at)} · sha256 ${(d.content_sha256 || "").slice(0, 12)}`
    : job.dataset_id || "(deleted)";
  fillList("job-hyperparameters", [["dataset", dataset], ...Object.entries(job.hyperparameters || {})
    .map(([key, value]) => [key, typeof value === "object" && value !== null ? JSON.stringify(value) : String(value)])]);
  const task = (job.hyperparameters || {}).task;
  const final = job.metrics || points[points.length - 1] || {};
  const best = final.best_iteration ?? bestIteration(points);
  const atBest = points.find((p) => p.iteration === best) || {};
  const acc = metricLabel("accuracy", task);
  fillList("job-metrics", [
    ["final cost", formatNumber(final.cost)], ["final val cost", formatNumber(final.val_cost)],
    [`final ${acc}`, formatNumber(final.accuracy)], [`final val ${acc}`, formatNumber(final.val_accuracy)],
    ["best iteration", best], ["best cost", formatNumber(atBest.cost)],
    ["best val cost", formatNumber(atBest.val_cost)], [`best val ${acc}`, formatNumber(atBest.val_accuracy)],
    ["stopped early", final.stopped_early === undefined ? "" : String(final.stopped_early)],
  ]);
}

function parseEvent(block) {
  const event = { type: "message", id: null, data: [] };
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event.type = value;
    else if (field === "id") event.id = value;
    else if (field === "data") event.data.push(value);
  }
  return event.data.length ? { ...event, data: JSON.parse(event.data.join("\n")) } : null;
}

// A Server-Sent Events reader on fetch rather than EventSource, because EventSource cannot
// send the Authorization header. After a dropped connection it reconnects with Last-Event-ID,
// and the server resumes after that iteration, so no point is drawn twice.
async function streamEvents(path, handlers, signal) {
  let lastId = null;
  const pause = () => new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
  while (!signal.aborted) {
    const headers = authHeaders();
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    try {
      const response = await fetch(path, { headers, signal });
      if (!response.ok) {
        const body = await response.json();
        handlers.failed(`${response.status}: ${body.error ? body.error.message : response.statusText}`);
        return;
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let boundary;
        while ((boundary = buffer.indexOf("\n\n")) >= 0) {
          const event = parseEvent(buffer.slice(0, boundary));
          buffer = buffer.slice(boundary + 2);
          if (!event) continue;
          if (event.id !== null) lastId = event.id;
          if (handlers[event.type]) handlers[event.type](event.data);
          if (event.type === "end" || event.type === "error" || signal.aborted) return;
        }
      }
    } catch (error) {
      if (signal.aborted) return;
    }
    await pause();
  }
}

function watchJob(job) {
  const jobId = job.id;
  const [costChart, accuracyChart] = charts;
  const series = [
    [costChart.data.datasets[0], "cost"], [costChart.data.datasets[1], "val_cost"],
    [accuracyChart.data.datasets[0], "accuracy"], [accuracyChart.data.datasets[1], "val_accuracy"],
  ];
  let points = [];
  let redrawPending = false;
  const redraw = () => {
    redrawPending = false;
    const restored = job.metrics ? job.metrics.best_iteration : null;
    markBest(charts, restored ?? bestIteration(points));
    const exploded = document.getElementById("job-exploded");
    exploded.textContent = explosion(points) || "";
    exploded.hidden = !exploded.textContent;
    for (const chart of charts) chart.update("none");
  };
  const scheduleRedraw = () => {
    if (!redrawPending) {
      redrawPending = true;
      setTimeout(redraw, REDRAW_MS);
    }
  };
  const add = (point) => {
    for (const [dataset, key] of series) {
      if (point[key] !== undefined) dataset.data.push({ x: point.iteration, y: point[key] });
    }
    points.push(point);
  };
  const watch = new AbortController();
  jobWatch = watch;
  // Opened without Last-Event-ID, the stream starts with one thinned snapshot of the curve so
  // far (at most 2,000 real points, spikes kept), then sends each new point once: opening a
  // long job never replays its whole history.
  streamEvents(`/jobs/${jobId}/events`, {
    snapshot(curve) {
      for (const [dataset] of series) dataset.data = [];
      points = [];
      for (const point of curve.points) add(point);
      scheduleRedraw();
    },
    point(point) {
      add(point);
      scheduleRedraw();
      if (points.length > MAX_LIVE_POINTS && !watch.signal.aborted) {
        watch.abort();
        watchJob(job);
      }
    },
    status: showJobState,
    async end(summary) {
      showJobState({ status: summary.status, progress: summary.progress });
      showJobResult(summary);
      try {
        Object.assign(job, await api(`/jobs/${jobId}?max_points=2`), { dataset: job.dataset });
      } catch (error) {
        Object.assign(job, summary);
      }
      showJobDetails(job, points);
      redraw();
    },
    error(body) {
      showMessage(body.error.message, true);
    },
    failed(message) {
      showMessage(`Could not watch this job: ${message}`, true);
    },
  }, watch.signal);
}

// The page is reused from job to job: nothing of the last one may show under this one's id.
function clearJobPage() {
  showJobState({ status: "", progress: 0, iteration: 0, n_iterations: 0 });
  document.getElementById("job-iteration").textContent = "";
  document.getElementById("cancel-button").hidden = true;
  document.getElementById("job-result").textContent = "";
  document.getElementById("job-exploded").hidden = true;
  for (const id of ["job-timings", "job-metrics", "job-hyperparameters"]) {
    document.getElementById(id).replaceChildren();
  }
}

async function showJob(jobId) {
  document.getElementById("job-id").textContent = jobId;
  clearJobPage();
  document.getElementById("svg-link").href = `/jobs/${jobId}/curve.svg?yscale=${costScale()}`;
  document.getElementById("png-link").href = `/jobs/${jobId}/curve.png?yscale=${costScale()}`;
  let job;
  try {
    // Two points suffice here: the curve itself comes from the event stream.
    job = await api(`/jobs/${jobId}?max_points=2`);
  } catch (error) {
    if (location.hash !== `#/jobs/${jobId}`) return; // the user has moved on
    document.getElementById("job-page").hidden = true;
    showMessage(`Could not load this job: ${error.message}`, true);
    return;
  }
  if (job.dataset_id) job.dataset = await api(`/datasets/${job.dataset_id}`).catch(() => null);
  if (location.hash !== `#/jobs/${jobId}`) return;
  showJobDetails(job, job.history);
  const hp = job.hyperparameters || {};
  const options = (metric) => ({
    task: hp.task, xTitle: xLabel(hp),
    datasets: [lineDataset("train", TRAIN_COLOR), lineDataset("validation", VALIDATION_COLOR)],
  });
  charts = [makeCurveChart("cost-chart", "cost", options("cost")), makeCurveChart("accuracy-chart", "accuracy", options("accuracy"))];
  watchJob(job);
}

async function cancelJob() {
  const jobId = document.getElementById("job-id").textContent;
  try {
    const job = await api(`/jobs/${jobId}/cancel`, { method: "POST" });
    showJobState(job);
  } catch (error) {
    showMessage(`Cancel failed: ${error.message}`, true);
  }
}

// ---- routing --------------------------------------------------------------------------------

// The choices are the API's own, read from its OpenAPI document: no second list here.
async function loadChoices() {
  const response = await fetch("/openapi.json");
  if (!response.ok) return;
  const schema = (await response.json()).components.schemas.Hyperparameters.properties;
  for (const select of document.querySelectorAll("#train-form select[data-choices]")) {
    const { enum: names, default: chosen } = schema[select.name];
    select.replaceChildren(...names.map((name) => new Option(name, name, name === chosen, name === chosen)));
  }
}

function route() {
  clearInterval(refreshTimer);
  if (jobWatch) jobWatch.abort();
  for (const chart of [...charts, ...compareCharts]) chart.destroy();
  charts = [];
  compareCharts = [];
  document.getElementById("compare").hidden = true;
  showMessage("");
  const job = location.hash.match(/^#\/jobs\/([\w-]+)$/);
  const model = location.hash.match(/^#\/models\/(.+)$/);
  document.getElementById("overview").hidden = Boolean(job || model);
  document.getElementById("job-page").hidden = !job;
  document.getElementById("model-page").hidden = !model;
  if (job) showJob(job[1]);
  else if (model) showModel(decodeURIComponent(model[1]));
  else {
    refreshOverview();
    refreshTimer = setInterval(refreshOverview, REFRESH_MS);
  }
}

const keyInput = document.getElementById("api-key");
keyInput.value = localStorage.getItem("apiKey") || "";
keyInput.addEventListener("change", () => {
  localStorage.setItem("apiKey", keyInput.value.trim());
  route();
});
document.getElementById("upload-form").addEventListener("submit", uploadDataset);
document.getElementById("train-form").addEventListener("submit", startTraining);
document.getElementById("cancel-button").addEventListener("click", cancelJob);
document.getElementById("predict-form").addEventListener("submit", predict);
document.getElementById("compare-button").addEventListener("click", compareSelected);
document.getElementById("job-status-filter").addEventListener("change", refreshOverview);
document.getElementById("job-name-filter").addEventListener("input", renderJobs);
document.querySelector("#jobs-table thead").addEventListener("click", onJobsTableClick);
document.querySelector("#jobs-table tbody").addEventListener("change", onJobSelected);
setupLogToggles(() => {
  applyCostScale([...charts, ...compareCharts]);
  const jobId = document.getElementById("job-id").textContent;
  document.getElementById("svg-link").href = `/jobs/${jobId}/curve.svg?yscale=${costScale()}`;
  document.getElementById("png-link").href = `/jobs/${jobId}/curve.png?yscale=${costScale()}`;
});
window.addEventListener("hashchange", route);
loadChoices();
route();
