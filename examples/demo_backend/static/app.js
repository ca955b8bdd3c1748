// The demo page: login, create a record, list records. Talks only to the JSON API.
// Data from the server is only ever written with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function showStatus(text, isError) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
  }
  return { ok: response.ok, status: response.status, data };
}

function errorText(result) {
  if (result.data && typeof result.data.message === "string") {
    return `${result.status}: ${result.data.message}`;
  }
  return `request failed (${result.status})`;
}

function formFields(form) {
  const fields = {};
  for (const [name, value] of new FormData(form).entries()) {
    fields[name] = String(value);
  }
  return fields;
}

function showLoggedIn(account) {
  $("login-section").hidden = account !== null;
  $("app-section").hidden = account === null;
  $("whoami").hidden = account === null;
  $("whoami-name").textContent = account ? `${account.username} (${account.roles.join(", ")})` : "";
}

function renderRecords(records) {
  const body = $("records");
  body.replaceChildren();
  for (const record of records) {
    const row = document.createElement("tr");
    const cells = [record.id, record.name, record.email, record.ssn, record.card_number, record.owner, record.updated_at];
    for (const value of cells) {
      const cell = document.createElement("td");
      cell.textContent = String(value);
      row.appendChild(cell);
    }
    body.appendChild(row);
  }
  $("empty").hidden = records.length > 0;
}

async function refresh() {
  const result = await api("GET", "/api/users");
  if (result.status === 401) {
    showLoggedIn(null);
    return;
  }
  if (!result.ok || !result.data || !Array.isArray(result.data.users)) {
    showStatus(errorText(result), true);
    return;
  }
  renderRecords(result.data.users);
}

async function onLogin(event) {
  event.preventDefault();
  const form = event.target;
  const result = await api("POST", "/login", formFields(form));
  if (!result.ok) {
    showStatus(errorText(result), true);
    return;
  }
  form.reset();
  showLoggedIn(result.data);
  showStatus("Logged in.", false);
  await refresh();
}

async function onLogout() {
  await api("POST", "/logout");
  showLoggedIn(null);
  renderRecords([]);
  showStatus("Logged out.", false);
}

async function onCreate(event) {
  event.preventDefault();
  const form = event.target;
  const result = await api("POST", "/api/users", formFields(form));
  if (!result.ok) {
    showStatus(errorText(result), true);
    return;
  }
  form.reset();
  showStatus(`Created record ${result.data.id}.`, false);
  await refresh();
}

async function start() {
  $("login-form").addEventListener("submit", onLogin);
  $("create-form").addEventListener("submit", onCreate);
  $("logout").addEventListener("click", onLogout);
  $("refresh").addEventListener("click", refresh);
  const me = await api("GET", "/api/me");
  showLoggedIn(me.ok ? me.data : null);
  if (me.ok) {
    await refresh();
  }
}

document.addEventListener("DOMContentLoaded", start);
