// The local stack's forecast page: one SKU's sales, draft and forecast on a chart, its cells
// in a table to edit or revert, and its edit history. Talks only to the API beside it,
// with the bearer token handed over in the URL fragment (#token=...) or pasted.
"use strict";

const DAY = 86400;
const state = { token: null, rows: [], sales: [], chart: null };
const $ = (id) => document.getElementById(id);

function status(text, isError) {
  const line = $("status");
  line.textContent = text;
  line.className = isError ? "error" : "";
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function addDays(iso, days) {
  const date = new Date(iso + "T00:00:00Z");
  date.setUTCDate(date.getUTCDate() + days);
  return isoDay(date);
}

function claims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch (_) {
    return {};
  }
}

// One API call; problem+json errors become exceptions with the server's detail.
async function api(method, path, body, headers) {
  const init = { method, headers: Object.assign({ authorization: "Bearer " + state.token }, headers || {}) };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    sessionStorage.removeItem("snowcast-token");
    showSignIn("Your token was refused (expired or for another stack): paste a new one.");
    throw new Error("unauthorized");
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const problem = await response.json();
      detail = problem.detail || problem.title || detail;
    } catch (_) { /* not JSON */ }
    const error = new Error(detail);
    error.status = response.status;
    throw error;
  }
  return response.status === 204 ? null : response.json();
}

function query(params) {
  return new URLSearchParams(params).toString();
}

// Every SKU with a forecast in the range (the forecast pages, followed to the end).
async function loadSkus() {
  const skus = new Set();
  let cursor = null;
  do {
    const params = { from: $("from").value, to: $("to").value, limit: 1000 };
    if (cursor) params.cursor = cursor;
    const page = await api("GET", "/v1/forecast?" + query(params));
    page.items.forEach((row) => skus.add(row.sku_id));
    cursor = page.next_cursor;
  } while (cursor);
  const select = $("sku");
  const current = select.value;
  select.replaceChildren(...[...skus].sort().map((sku) => new Option(sku, sku)));
  if (skus.has(current)) select.value = current;
  return skus.size;
}

async function loadSku() {
  const sku = $("sku").value;
  if (!sku) {
    status("No forecast in this range yet: upload sales, or widen the dates.");
    return;
  }
  const from = $("from").value;
  const to = $("to").value;
  const showManual = $("show-manual").checked;
  const rows = [];
  let cursor = null;
  do {
    const params = { sku_id: sku, from, to, show_manual: showManual, limit: 1000 };
    if (cursor) params.cursor = cursor;
    const page = await api("GET", "/v1/forecast?" + query(params));
    rows.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  // Six months of sales before the range, for the chart.
  const salesFrom = addDays(from, -180);
  const sales = await api("GET", "/v1/sales?" + query({ sku_id: sku, from: salesFrom, to }));
  const history = await api("GET", "/v1/edits/history?" + query({ sku_id: sku, from, to, limit: 1000 }));
  state.rows = rows;
  state.sales = sales.items;
  drawChart();
  drawTable();
  drawHistory(history.items);
  status(`${sku}: ${rows.length} days of forecast, ${sales.items.length} days of sales.`);
}

function drawChart() {
  const days = new Map();
  const slot = (date) => {
    if (!days.has(date)) days.set(date, { sales: null, draft: null, shown: null });
    return days.get(date);
  };
  state.sales.forEach((day) => { slot(day.date).sales = day.units; });
  state.rows.forEach((row) => {
    const day = slot(row.date);
    day.draft = row.draft_quantity;
    day.shown = row.quantity;
  });
  const dates = [...days.keys()].sort();
  const data = [
    dates.map((date) => Date.parse(date + "T00:00:00Z") / 1000),
    dates.map((date) => days.get(date).sales),
    dates.map((date) => days.get(date).draft),
    dates.map((date) => days.get(date).shown),
  ];
  const chart = $("chart");
  const width = Math.max(320, chart.clientWidth || 800);
  const options = {
    width,
    height: 320,
    scales: { x: { time: true } },
    series: [
      { label: "Date", value: (_, ts) => (ts == null ? "" : isoDay(new Date(ts * 1000))) },
      { label: "Sales", stroke: "#6b7280", width: 1.5, points: { show: false } },
      { label: "Draft", stroke: "#2563eb", dash: [6, 4], width: 1.5 },
      { label: "Forecast", stroke: "#ea580c", width: 2, points: { size: 6 } },
    ],
    axes: [{}, { label: "units" }],
    hooks: {
      ready: [(u) => u.over.addEventListener("click", () => {
        const index = u.cursor.idx;
        if (index == null) return;
        focusCell(isoDay(new Date(u.data[0][index] * 1000)));
      })],
    },
  };
  if (state.chart) state.chart.destroy();
  state.chart = new uPlot(options, data, chart);
}

function focusCell(date) {
  const input = document.querySelector(`#cells input[data-date="${date}"]`);
  if (input) {
    input.focus();
    input.select();
  } else {
    status(`${date} has no forecast cell in this range.`);
  }
}

function cellRow(row) {
  const tr = document.createElement("tr");
  const text = (value) => {
    const td = document.createElement("td");
    td.textContent = value == null ? "–" : String(value);
    return td;
  };
  tr.append(text(row.date), text(row.draft_quantity), text(row.quantity));
  const quantity = document.createElement("input");
  quantity.type = "number";
  quantity.min = "0";
  quantity.step = "0.0001";
  quantity.value = row.manual_quantity == null ? "" : row.manual_quantity;
  quantity.dataset.date = row.date;
  quantity.setAttribute("aria-label", `Manual value for ${row.date}`);
  const note = document.createElement("input");
  note.type = "text";
  note.maxLength = 1000;
  note.value = row.note || "";
  note.setAttribute("aria-label", `Note for ${row.date}`);
  const save = document.createElement("button");
  save.textContent = "Save";
  save.addEventListener("click", () => saveCell(row, quantity.value, note.value));
  [quantity, note].forEach((input) => input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") saveCell(row, quantity.value, note.value);
  }));
  const actions = document.createElement("td");
  actions.append(save);
  if (row.version > 0) {
    const revert = document.createElement("button");
    revert.textContent = "Revert";
    revert.setAttribute("aria-label", `Revert ${row.date} to the draft`);
    revert.addEventListener("click", () => revertCell(row));
    actions.append(revert);
    tr.className = "edited";
  }
  const quantityCell = document.createElement("td");
  quantityCell.append(quantity);
  const noteCell = document.createElement("td");
  noteCell.append(note);
  tr.append(quantityCell, noteCell, actions);
  return tr;
}

function drawTable() {
  $("cells").tBodies[0].replaceChildren(...state.rows.map(cellRow));
}

function drawHistory(entries) {
  const list = $("history");
  if (!entries.length) {
    const li = document.createElement("li");
    li.textContent = "No edits in this range.";
    list.replaceChildren(li);
    return;
  }
  list.replaceChildren(...entries.slice().reverse().map((entry) => {
    const li = document.createElement("li");
    const change = entry.op === "delete"
      ? `reverted (was ${entry.old_quantity})`
      : `${entry.old_quantity == null ? "draft" : entry.old_quantity} → ${entry.new_quantity}`;
    li.textContent = `${entry.date}: ${change} by ${entry.edited_by}, ${entry.edited_at.replace("T", " ").slice(0, 19)}`
      + (entry.note ? ` — “${entry.note}”` : "");
    return li;
  }));
}

function cellPath(row) {
  return `/v1/edits/${encodeURIComponent(row.sku_id)}/${row.date}`;
}

async function saveCell(row, quantity, note) {
  if (quantity === "") {
    status("Enter a value (or use Revert to go back to the draft).", true);
    return;
  }
  const body = { quantity: Number(quantity) };
  if (note) body.note = note;
  let outcome;
  try {
    await api("PUT", cellPath(row), body, { "if-match": `"${row.version}"` });
    outcome = [`Saved ${row.sku_id} on ${row.date}.`];
  } catch (error) {
    if (error.message === "unauthorized") return;
    outcome = [error.status === 412
      ? `${row.date} was changed by someone else meanwhile; showing the current value.`
      : `Not saved: ${error.message}`, true];
  }
  await refresh(outcome);
}

async function revertCell(row) {
  let outcome;
  try {
    await api("DELETE", cellPath(row), undefined, { "if-match": `"${row.version}"` });
    outcome = [`Reverted ${row.sku_id} on ${row.date} to the draft.`];
  } catch (error) {
    if (error.message === "unauthorized") return;
    outcome = [`Not reverted: ${error.message}`, true];
  }
  await refresh(outcome);
}

// Reloads the SKU; `outcome` ([text, isError]) is what the user just did, shown over the
// summary line the reload writes.
async function refresh(outcome) {
  try {
    await loadSku();
    if (outcome) status(...outcome);
  } catch (error) {
    if (error.message !== "unauthorized") status(`Could not load: ${error.message}`, true);
  }
}

function showSignIn(message) {
  $("app").hidden = true;
  $("signin").hidden = false;
  if (message) $("signin").querySelector("p").textContent = message;
  $("token").focus();
}

async function start(token) {
  state.token = token;
  const who = claims(token);
  $("who").textContent = `tenant ${who.tenant_id || "?"} · user ${who.sub || "?"}`;
  $("signin").hidden = true;
  $("app").hidden = false;
  try {
    const skus = await loadSkus();
    if (skus) await loadSku();
    else status("No forecast in this range yet: upload sales, or widen the dates.");
  } catch (error) {
    if (error.message !== "unauthorized") status(`Could not load: ${error.message}`, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  // The range and SKU may be given in the address (?from=&to=&sku=); by default the next
  // 90 days, where the draft of data loaded up to yesterday lies.
  const wanted = new URLSearchParams(location.search);
  const today = isoDay(new Date());
  $("from").value = wanted.get("from") || today;
  $("to").value = wanted.get("to") || addDays($("from").value, 89);
  if (wanted.get("sku")) $("sku").append(new Option(wanted.get("sku"), wanted.get("sku")));
  $("controls").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await loadSkus();
    } catch (_) { /* reported by loadSku */ }
    await refresh();
  });
  $("sku").addEventListener("change", refresh);
  $("show-manual").addEventListener("change", refresh);
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    sessionStorage.setItem("snowcast-token", token);
    start(token);
  });
  // A token in the fragment (never sent to the server) is kept for this tab only.
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    sessionStorage.setItem("snowcast-token", fragment.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  const token = sessionStorage.getItem("snowcast-token");
  if (token) start(token);
  else showSignIn();
});
