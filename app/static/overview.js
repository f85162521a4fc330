// The overview: upload and train forms, the runs table (hyperparameters and final metrics as
// columns, sortable, filterable, selectable for comparison), datasets and models.
"use strict";

// The runs table's state: kept across its 2-second refreshes.
const jobsView = { items: [], datasets: new Map(), sortKey: "created_at", descending: true, selected: new Set() };

// One flat row per job: what the runs table shows and sorts by.
function jobRow(job) {
  const hp = job.hyperparameters || {};
  const metrics = job.metrics || {};
  const dataset = jobsView.datasets.get(job.dataset_id);
  return {
    job,
    model_name: job.model_name,
    status: job.status,
    dataset: dataset ? `${dataset.name} · ${(dataset.content_sha256 || dataset.id).slice(0, 8)}` : (job.dataset_id || "").slice(0, 8),
    layers: (hp.hidden_layers || []).join("-"),
    learning_rate: hp.learning_rate,
    optimizer: hp.optimizer,
    n_iterations: hp.n_iterations,
    batch_size: hp.batch_size ?? null,
    cost: metrics.cost,
    val_cost: metrics.val_cost,
    accuracy: metrics.accuracy,
    val_accuracy: metrics.val_accuracy,
    duration: duration(job),
    created_at: job.created_at,
  };
}

function isMissing(value) {
  return value === null || value === undefined || value === "";
}

// Missing values (a running job's metrics) sort last in both directions.
function compareRows(key, sign) {
  return (a, b) => {
    const [x, y] = [a[key], b[key]];
    if (isMissing(x) || isMissing(y)) return isMissing(x) - isMissing(y);
    return sign * (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y)));
  };
}

function renderJobs() {
  const nameFilter = document.getElementById("job-name-filter").value.trim().toLowerCase();
  const rows = jobsView.items.map(jobRow).filter((r) => !nameFilter || r.model_name.toLowerCase().includes(nameFilter));
  rows.sort(compareRows(jobsView.sortKey, jobsView.descending ? -1 : 1));
  let emptyText;
  if (jobsView.items.length && !rows.length) emptyText = "No jobs match this filter.";
  else if (!jobsView.datasets.size) emptyText = "No jobs yet: upload a CSV to start, then train a model on it.";
  else emptyText = "No jobs yet: pick a dataset in the Train form and start training.";
  if (!jobsView.items.length && document.getElementById("job-status-filter").value) emptyText = "No jobs with this status.";
  fillTable("jobs-table", rows, (row, r) => {
    const box = row.insertCell().appendChild(document.createElement("input"));
    box.type = "checkbox";
    box.className = "select-job";
    box.value = r.job.id;
    box.checked = jobsView.selected.has(r.job.id);
    box.setAttribute("aria-label", `select ${r.model_name}`);
    cell(row, r.model_name, r.job.model_id ? { link: `#/models/${encodeURIComponent(r.model_name)}` } : {});
    cell(row, r.status).className = `status ${r.status}`;
    cell(row, r.dataset);
    cell(row, r.layers);
    cell(row, r.learning_rate);
    cell(row, r.optimizer);
    cell(row, r.n_iterations);
    cell(row, r.batch_size ?? "full");
    for (const key of ["cost", "val_cost", "accuracy", "val_accuracy"]) cell(row, formatNumber(r[key])).className = "num";
    cell(row, formatSeconds(r.duration)).className = "num";
    cell(row, formatTime(r.created_at));
    cell(row, r.job.id.slice(0, 8), { code: true, link: `#/jobs/${r.job.id}` });
  }, emptyText);
  for (const th of document.querySelectorAll("#jobs-table th[data-key]")) {
    th.classList.toggle("sorted", th.dataset.key === jobsView.sortKey);
    th.classList.toggle("descending", th.dataset.key === jobsView.sortKey && jobsView.descending);
  }
  document.getElementById("compare-button").disabled = jobsView.selected.size < 2;
}

async function loadOverview() {
  const status = document.getElementById("job-status-filter").value;
  const [datasets, jobs, models] = await Promise.all([
    api("/datasets?limit=100"),
    api(`/jobs?limit=100${status ? `&status=${status}` : ""}`),
    api("/models?limit=100"),
  ]);
  jobsView.datasets = new Map(datasets.items.map((d) => [d.id, d]));
  jobsView.items = jobs.items;
  renderJobs();
  fillTable("datasets-table", datasets.items, (row, d) => {
    cell(row, d.name);
    cell(row, d.n_samples).className = "num";
    cell(row, d.n_features).className = "num";
    cell(row, d.classes ? `${d.task} (${d.classes.length} classes)` : d.task);
    cell(row, formatTime(d.created_at));
    cell(row, (d.content_sha256 || "").slice(0, 12), { code: true }).title = d.content_sha256 || "";
    cell(row, d.id, { code: true });
  });
  fillTable("models-table", models.items, (row, m) => {
    cell(row, m.name, { link: `#/models/${encodeURIComponent(m.name)}` });
    cell(row, m.version);
    cell(row, formatNumber(m.metrics.accuracy));
    cell(row, formatNumber(m.metrics.cost));
    cell(row, m.id, { code: true });
  });
  const select = document.querySelector("#train-form select[name=dataset_id]");
  const chosen = select.value;
  select.replaceChildren(...datasets.items.map((d) => new Option(
    `${d.name} · ${d.n_samples} rows · ${formatTime(d.created_at)} · ${(d.content_sha256 || d.id).slice(0, 8)}`, d.id)));
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
  if (form.get("batch_size")) hyperparameters.batch_size = Number(form.get("batch_size"));
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

function onJobsTableClick(event) {
  const th = event.target.closest("th[data-key]");
  if (th) {
    const key = th.dataset.key;
    jobsView.descending = jobsView.sortKey === key ? !jobsView.descending : false;
    jobsView.sortKey = key;
    renderJobs();
  }
}

function onJobSelected(event) {
  if (!event.target.classList.contains("select-job")) return;
  if (event.target.checked) jobsView.selected.add(event.target.value);
  else jobsView.selected.delete(event.target.value);
  document.getElementById("compare-button").disabled = jobsView.selected.size < 2;
}

