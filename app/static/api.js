// What the dashboard (index.html) and the sweep page (sweep.html) share: calls to the API with
// the browser's key, and the message line. Plain JS, no build step; loaded before each page's
// own script.
"use strict";

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
    const message = body && body.error ? body.error.message : response.statusText;
    throw Object.assign(new Error(`${response.status}: ${message}`), { status: response.status });
  }
  return body;
}

function showMessage(text, isError = false) {
  const box = document.getElementById("message");
  box.textContent = text;
  box.className = isError ? "error" : "";
  box.hidden = !text;
}
