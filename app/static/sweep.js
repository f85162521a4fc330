// The sweep page: /static/sweep.html lists the sweeps; ?id=SWEEP shows one sweep's leaderboard
// and its trials' curves overlaid on one chart. Plain JS, no build step; it shares app.css and
// the API key (localStorage "apiKey") and api.js with the main dashboard.
"use strict";

const DONE = new Set(["succeeded", "failed", "cancelled"]);
const POLL_MS = 2000;
// Curves drawn at most (the leaderboard's first), thinned server-side to this many points each.
const MAX_CURVES = 40;
const CURVE_POINTS = 400;

const curves = new Map(); // job id -> {status, points}
let chart = null;
let timer = null;

function cell(row, value, link = null) {
  const td = row.insertCell();
  const node = link ? td.appendChild(document.createElement("a")) : td;
  if (link) node.href = link;
  node.textContent = value ?? "";
  return td;
}

function formatNumber(value) {
  return typeof value === "number" ? value.toPrecision(4) : "";
}

function formatParams(params) {
  return Object.entries(params).map(([name, value]) => `${name}=${JSON.stringify(value)}`).join(" ");
}

function color(index) {
  return `hsl(${(index * 137.5) % 360}, 65%, 45%)`;
}

async function showList() {
  document.getElementById("sweep-list").hidden = false;
  const page = await api("/sweeps?limit=100");
  document.getElementById("sweeps-empty").hidden = page.items.length > 0;
  const body = document.querySelector("#sweeps-table tbody");
  body.replaceChildren();
  for (const sweep of page.items) {
    const row = body.insertRow();
    cell(row, sweep.name, `?id=${sweep.id}`);
    cell(row, sweep.status).className = `status ${sweep.status}`;
    cell(row, sweep.metric);
    cell(row, `${sweep.n_started} of ${sweep.n_trials}`);
    cell(row, new Date(sweep.created_at).toLocaleString());
    cell(row, sweep.id);
  }
}

function renderSummary(sweep) {
  document.getElementById("sweep-name").textContent = sweep.name;
  document.getElementById("sweep-id").textContent = sweep.id;
  const status = document.getElementById("sweep-status");
  status.textContent = sweep.status + (sweep.error ? ` (${sweep.error})` : "");
  status.className = `status ${sweep.status}`;
  const finished = sweep.trials.filter((trial) => DONE.has(trial.status)).length;
  document.getElementById("sweep-progress").textContent =
    `${finished} of ${sweep.n_trials} trials finished, at most ${sweep.max_parallel} at once`;
  document.getElementById("sweep-metric").textContent =
    `${sweep.metric} (${sweep.goal === "max" ? "higher" : "lower"} is better)`;
  document.getElementById("sweep-cancel").hidden = sweep.status !== "running";
  const best = document.getElementById("sweep-best");
  best.replaceChildren();
  if (sweep.best) {
    best.append(`Best: ${sweep.metric} ${formatNumber(sweep.best.metrics[sweep.metric])}, `);
    const link = best.appendChild(document.createElement("a"));
    link.href = `/#/jobs/${sweep.best.job_id}`;
    link.textContent = `job ${sweep.best.job_id}`;
    if (sweep.best.model_id) best.append(`, model ${sweep.best.model_id}`);
  }
}

function renderBoard(sweep) {
  const body = document.querySelector("#leaderboard tbody");
  body.replaceChildren();
  for (const trial of sweep.trials) {
    const row = body.insertRow();
    row.dataset.trial = trial.trial;
    cell(row, trial.rank ?? "");
    cell(row, `#${trial.trial}`);
    cell(row, trial.status).className = `status ${trial.status}`;
    cell(row, formatParams(trial.params));
    cell(row, formatNumber(trial.metrics ? trial.metrics[sweep.metric] : null));
    cell(row, trial.job_id ? "curve" : "", trial.job_id ? `/#/jobs/${trial.job_id}` : null);
    cell(row, trial.model_id ?? "");
  }
}

async function fetchCurves(trials) {
  // A finished trial's curve never changes: fetched once. Unfinished ones are fetched again.
  const wanted = trials.filter((trial) => trial.job_id).slice(0, MAX_CURVES);
  await Promise.all(
    wanted
      .filter((trial) => !DONE.has(curves.get(trial.job_id)?.status))
      .map(async (trial) => {
        const history = await api(`/jobs/${trial.job_id}/history?max_points=${CURVE_POINTS}`);
        curves.set(trial.job_id, { status: history.status, points: history.points });
      }),
  );
  return wanted;
}

function drawChart(trials, key) {
  const datasets = trials.map((trial) => ({
    label: `#${trial.trial} ${formatParams(trial.params)}`,
    data: (curves.get(trial.job_id)?.points ?? [])
      .filter((point) => typeof point[key] === "number")
      .map((point) => ({ x: point.iteration, y: point[key] })),
    borderColor: color(trial.trial),
    backgroundColor: color(trial.trial),
    borderWidth: 1.5,
    pointRadius: 0,
  }));
  if (chart === null) {
    chart = new Chart(document.getElementById("sweep-chart"), {
      type: "line",
      data: { datasets },
      options: {
        animation: false,
        parsing: false,
        maintainAspectRatio: false,
        plugins: { title: { display: true, text: key }, legend: { position: "right" } },
        scales: {
          x: { type: "linear", title: { display: true, text: "iteration" } },
          y: { title: { display: true, text: key } },
        },
      },
    });
    return;
  }
  chart.data.datasets = datasets;
  chart.options.plugins.title.text = key;
  chart.options.scales.y.title.text = key;
  chart.update();
}

async function showSweep(id) {
  const select = document.getElementById("curve-metric");
  let sweep = null;
  let drawn = [];
  const refresh = async () => {
    clearTimeout(timer);
    try {
      sweep = await api(`/sweeps/${encodeURIComponent(id)}`);
      // The sweep's own metric's curves (validation ones when it ranks by them) until the
      // user picks another.
      if (!select.dataset.chosen) select.value = sweep.metric;
      renderSummary(sweep);
      renderBoard(sweep);
      drawn = await fetchCurves(sweep.trials);
      drawChart(drawn, select.value);
      showMessage("");
    } catch (error) {
      showMessage(error.message, true);
      // No such sweep (or no longer): nothing to poll for.
      if (error.status === 404) return;
    }
    // Shown once there is a sweep to show, never as an empty frame.
    document.getElementById("sweep-detail").hidden = !sweep;
    const unfinished = sweep && sweep.trials.some((trial) => trial.job_id && !DONE.has(trial.status));
    if (!sweep || sweep.status === "running" || unfinished) timer = setTimeout(refresh, POLL_MS);
  };
  select.addEventListener("change", () => {
    select.dataset.chosen = "1";
    drawChart(drawn, select.value);
  });
  document.getElementById("sweep-cancel").addEventListener("click", async () => {
    try {
      await api(`/sweeps/${encodeURIComponent(id)}/cancel`, { method: "POST" });
      await refresh();
    } catch (error) {
      showMessage(error.message, true);
    }
  });
  await refresh();
}

function main() {
  const keyInput = document.getElementById("api-key");
  keyInput.value = localStorage.getItem("apiKey") || "";
  keyInput.addEventListener("change", () => {
    localStorage.setItem("apiKey", keyInput.value.trim());
    location.reload();
  });
  const id = new URLSearchParams(location.search).get("id");
  (id ? showSweep(id) : showList()).catch((error) => showMessage(error.message, true));
}

main();
