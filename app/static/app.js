// The dashboard: an overview (datasets, jobs, models, upload and train forms) and a job page
// whose curves grow live from the job's Server-Sent Events stream. Plain JS, no build step.
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

// With API keys configured the server wants "Authorization: Bearer <key>" on every call; the
// key lives in this browser's localStorage only.
function authHeaders() {
  const key = localStorage.getItem("apiKey");
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...authHeaders(), ...options.headers } });
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    // The service's error body: {"error": {"code", "message", "details"}}.
    const error = body && body.error ? body.error.message : response.statusText;
    throw new Error(`${response.status}: ${error}`);
  }
  return body;
}

function showMessage(text, isError = false) {
  const box = document.getElementById("message");
  box.textContent = text;
  box.className = isError ? "error" : "";
  box.hidden = !text;
}

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

function fillTable(id, items, addCells) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren();
  for (const item of items) addCells(body.insertRow(), item);
}

function formatNumber(value) {
  return typeof value === "number" ? value.toPrecision(4) : "";
}

// ---- overview -------------------------------------------------------------------------------

async function loadOverview() {
  const [datasets, jobs, models] = await Promise.all([
    api("/datasets?limit=100"), api("/jobs?limit=100"), api("/models?limit=100"),
  ]);
  fillTable("datasets-table", datasets.items, (row, d) => {
    cell(row, d.name);
    cell(row, d.n_samples);
    cell(row, d.n_features);
    cell(row, d.classes ? `${d.task} (${d.classes.length} classes)` : d.task);
    cell(row, d.id, { code: true });
  });
  fillTable("jobs-table", jobs.items, (row, j) => {
    cell(row, j.id, { code: true, link: `#/jobs/${j.id}` });
    cell(row, j.status).className = `status ${j.status}`;
    const bar = cell(row, "").appendChild(document.createElement("progress"));
    bar.max = 1;
    bar.value = j.progress;
    cell(row, j.model_name);
    cell(row, new Date(j.created_at).toLocaleString());
  });
  fillTable("models-table", models.items, (row, m) => {
    cell(row, m.name);
    cell(row, m.version);
    cell(row, formatNumber(m.metrics.accuracy));
    cell(row, formatNumber(m.metrics.cost));
    cell(row, m.id, { code: true });
  });
  const select = document.querySelector("#train-form select[name=dataset_id]");
  const chosen = select.value;
  select.replaceChildren(...datasets.items.map((d) => new Option(`${d.name} (${d.id.slice(0, 8)})`, d.id)));
  if (chosen) select.value = chosen;
}

async function refreshOverview() {
  try {
    await loadOverview();
  } catch (error) {
    showMessage(`Could not load the lists: ${error.message}`, true);
  }
}

async function uploadDataset(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  for (const key of ["label_column", "name"]) if (!form.get(key)) form.delete(key);
  try {
    const dataset = await api("/datasets", { method: "POST", body: form });
    showMessage(`Uploaded ${dataset.name}: ${dataset.n_samples} rows, ${dataset.n_features} features.`);
    await loadOverview();
    document.querySelector("#train-form select[name=dataset_id]").value = dataset.id;
  } catch (error) {
    showMessage(`Upload failed: ${error.message}`, true);
  }
}

async function startTraining(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const hyperparameters = {
    hidden_layers: form.get("hidden_layers").split(",").filter((s) => s.trim()).map(Number),
    n_iterations: Number(form.get("n_iterations")),
    learning_rate: Number(form.get("learning_rate")),
    optimizer: form.get("optimizer"),
    validation_fraction: Number(form.get("validation_fraction")),
    record_every: Number(form.get("record_every")),
  };
  const body = { dataset_id: form.get("dataset_id"), hyperparameters };
  if (form.get("name")) body.name = form.get("name");
  try {
    const accepted = await api("/train", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    location.hash = `#/jobs/${accepted.job_id}`;
  } catch (error) {
    showMessage(`Training was not started: ${error.message}`, true);
  }
}

// ---- job page -------------------------------------------------------------------------------

function makeChart(canvasId, metric) {
  const line = (label, color) => ({
    label, data: [], borderColor: color, backgroundColor: color, borderWidth: 1.5, pointRadius: 0,
  });
  return new Chart(document.getElementById(canvasId), {
    type: "line",
    data: { datasets: [line("train", "#1f77b4"), line("validation", "#ff7f0e")] },
    options: {
      animation: false,
      parsing: false,
      maintainAspectRatio: false,
      plugins: { title: { display: true, text: metric } },
      scales: {
        x: { type: "linear", title: { display: true, text: "iteration" } },
        y: { title: { display: true, text: metric } },
      },
    },
  });
}

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
  if (job.error) result.textContent = `Error: ${job.error}`;
  else if (job.model_id) result.textContent = `Model ${job.model_name}: ${job.model_id}`;
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

function watchJob(jobId) {
  const [costChart, accuracyChart] = charts;
  const series = [
    [costChart.data.datasets[0], "cost"], [costChart.data.datasets[1], "val_cost"],
    [accuracyChart.data.datasets[0], "accuracy"], [accuracyChart.data.datasets[1], "val_accuracy"],
  ];
  let redrawPending = false;
  let drawn = 0;
  const redraw = () => {
    redrawPending = false;
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
    drawn += 1;
  };
  const watch = new AbortController();
  jobWatch = watch;
  // Opened without Last-Event-ID, the stream starts with one thinned snapshot of the curve so
  // far (at most 2,000 real points, spikes kept), then sends each new point once: opening a
  // long job never replays its whole history.
  streamEvents(`/jobs/${jobId}/events`, {
    snapshot(curve) {
      for (const [dataset] of series) dataset.data = [];
      drawn = 0;
      for (const point of curve.points) add(point);
      scheduleRedraw();
    },
    point(point) {
      add(point);
      scheduleRedraw();
      if (drawn > MAX_LIVE_POINTS && !watch.signal.aborted) {
        watch.abort();
        watchJob(jobId);
      }
    },
    status: showJobState,
    end(job) {
      showJobState({ status: job.status, progress: job.progress });
      showJobResult(job);
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

function showJob(jobId) {
  document.getElementById("job-id").textContent = jobId;
  document.getElementById("job-result").textContent = "";
  document.getElementById("svg-link").href = `/jobs/${jobId}/curve.svg`;
  document.getElementById("png-link").href = `/jobs/${jobId}/curve.png`;
  charts = [makeChart("cost-chart", "cost"), makeChart("accuracy-chart", "accuracy")];
  watchJob(jobId);
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
  for (const chart of charts) chart.destroy();
  charts = [];
  showMessage("");
  const match = location.hash.match(/^#\/jobs\/([\w-]+)$/);
  document.getElementById("overview").hidden = Boolean(match);
  document.getElementById("job-page").hidden = !match;
  if (match) {
    showJob(match[1]);
  } else {
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
window.addEventListener("hashchange", route);
loadChoices();
route();
