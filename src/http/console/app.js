// The s3-connector console: plain JavaScript over /api/v1, no framework, no outside requests.
// Every value from the API is inserted as text (never as HTML).
"use strict";

const TOKEN_KEY = "s3c-api-token";
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch("/api/v1" + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin("The token was refused; enter it again.");
    throw new Error("unauthorised");
  }
  return { status: response.status, json: await response.json() };
}

function when(text) {
  if (!text) return "—";
  return new Date(text).toLocaleString();
}

function showLogin(message) {
  document.querySelectorAll(".view").forEach((v) => (v.hidden = true));
  $("login").hidden = false;
  if (message) $("login").querySelector("p").textContent = message;
}

function show(view) {
  $("login").hidden = true;
  document.querySelectorAll(".view").forEach((v) => (v.hidden = v.id !== "view-" + view));
  document.querySelectorAll("nav button[data-view]").forEach((b) =>
    b.classList.toggle("active", b.dataset.view === view));
  if (view === "connectors") loadConnectors();
  if (view === "search") loadSearchChoices();
  if (view === "connect") loadSetup();
}

function statusOf(connector) {
  if (connector.running) return el("span", { class: "ok" }, "syncing…");
  const last = connector.last_sync;
  if (!last) return el("span", { class: "skip" }, "never synced");
  const kind = last.outcome === "succeeded" ? "ok" : "error";
  return el("span", { class: kind }, last.outcome);
}

async function loadConnectors() {
  const { json } = await api("GET", "/connectors");
  const rows = $("connectors").querySelector("tbody");
  rows.replaceChildren();
  // The operator sees whose each connector is; a tenant's own need no column.
  const tenants = new Set(json.connectors.map((c) => c.tenant ?? ""));
  const tenantColumn = tenants.size > 1;
  $("tenant-heading").hidden = !tenantColumn;
  for (const c of json.connectors) {
    const last = c.last_sync;
    const counts = last ? `${last.added} / ${last.updated} / ${last.deleted} / ${last.unchanged}` : "—";
    const firstError = last && last.error_messages && last.error_messages[0];
    const row = el("tr", { "data-id": c.id },
      el("td", {}, c.id),
      el("td", {}, c.origin + (c.read_only ? " (read-only)" : "")),
      el("td", {}, statusOf(c)),
      el("td", {}, when(last && last.finished_at)),
      el("td", {}, when(c.next_run)),
      el("td", {}, counts),
      el("td", { class: firstError ? "error" : "" }, firstError || (last ? last.errors : "—")));
    if (tenantColumn) row.append(el("td", {}, c.tenant ?? "— (operator)"));
    row.addEventListener("click", () => loadHistory(c.id, !c.read_only));
    rows.append(row);
  }
  const conflicts = $("conflicts");
  conflicts.hidden = json.conflicts.length === 0;
  conflicts.textContent = json.conflicts
    .map((c) => `Stored connector ${c.id} is not running: ${c.reason}`).join(" ");
}

async function loadHistory(id, editable) {
  const { json } = await api("GET", `/connectors/${encodeURIComponent(id)}/syncs?limit=50`);
  $("history").hidden = false;
  $("history-id").textContent = id;
  $("edit-form").hidden = !editable;
  $("edit-id").textContent = id;
  $("edit-result").textContent = "";
  const rows = $("history-rows");
  rows.replaceChildren();
  for (const s of json.syncs) {
    rows.append(el("tr", {},
      el("td", {}, when(s.started_at)), el("td", {}, s.trigger),
      el("td", { class: s.outcome === "succeeded" ? "ok" : "error" }, s.outcome),
      el("td", {}, s.objects_listed), el("td", {}, s.added), el("td", {}, s.updated),
      el("td", {}, s.deleted), el("td", {}, s.errors),
      el("td", { class: "error" }, (s.error_messages || [])[0] || "")));
  }
}

async function loadSearchChoices() {
  const { json } = await api("GET", "/connectors");
  const select = $("search-connector");
  const chosen = select.value;
  select.replaceChildren(...json.connectors.map((c) => el("option", { value: c.id }, c.id)));
  if (chosen) select.value = chosen;
}

// Appends `text` to `parent`, wrapping each occurrence of a query term in <mark>.
function highlighted(parent, text, terms) {
  const words = terms.map((t) => t.toLowerCase()).filter((t) => t.length > 0);
  const lower = text.toLowerCase();
  let at = 0;
  while (at < text.length) {
    let next = -1, length = 0;
    for (const word of words) {
      const found = lower.indexOf(word, at);
      if (found !== -1 && (next === -1 || found < next)) { next = found; length = word.length; }
    }
    if (next === -1) { parent.append(text.slice(at)); break; }
    parent.append(text.slice(at, next), el("mark", {}, text.slice(next, next + length)));
    at = next + length;
  }
  return parent;
}

// Appends `text` to `parent`, each of `ranges` (UTF-8 byte ranges [start, end), in order, as the
// API's `highlights` give them) wrapped in <mark>.
function marked(parent, text, ranges) {
  const bytes = new TextEncoder().encode(text);
  const decode = (from, to) => new TextDecoder().decode(bytes.slice(from, to));
  let at = 0;
  for (const [start, end] of ranges || []) {
    if (start < at || end > bytes.length || start >= end) continue;
    parent.append(decode(at, start), el("mark", {}, decode(start, end)));
    at = end;
  }
  parent.append(decode(at, bytes.length));
  return parent;
}

// Where a passage lies: "#3 Setup > Keys (page 2)"; empty for a whole-document hit.
function place(passage) {
  if (!passage) return "";
  let text = `#${passage.ordinal}`;
  if (passage.heading) text += ` ${passage.heading}`;
  if (passage.page) text += ` (page ${passage.page})`;
  return text;
}

async function search(event) {
  event.preventDefault();
  const id = $("search-connector").value;
  const q = $("search-q").value;
  const mode = $("search-mode").value;
  const terms = q.split(/\s+/).map((t) => t.replace(/[^\p{L}\p{N}]/gu, ""));
  const modeParam = mode ? `&mode=${encodeURIComponent(mode)}` : "";
  const { status, json } = await api("GET",
    `/connectors/${encodeURIComponent(id)}/search?limit=20${modeParam}&q=${encodeURIComponent(q)}`);
  const hits = $("hits");
  hits.replaceChildren();
  if (status !== 200) { $("search-status").textContent = json.error.message; return; }
  $("search-status").textContent = `${json.hits.length} hit(s), ${json.mode}`;
  for (const hit of json.hits) {
    const item = el("li", {},
      highlighted(el("div", { class: "key" }), `${hit.bucket}/${hit.key}`, terms),
      el("div", { class: "place" }, [hit.title, place(hit.passage)].filter(Boolean).join(" · ")),
      marked(el("div", { class: "snippet" }), hit.snippet || "", hit.highlights));
    // A passage's whole text, folded: what a language model would be handed.
    if (hit.passage) {
      item.append(el("details", { class: "passage" },
        el("summary", {}, "Passage text"), el("div", { class: "text" }, hit.passage.text)));
    }
    hits.append(item);
  }
}

async function loadSetup() {
  const { status, json } = await api("GET", "/aws-setup");
  if (status !== 200) { $("setup-principal").textContent = json.error.message; return; }
  $("setup-principal").textContent = json.principal_arn;
  $("setup-external-id").textContent = json.external_id;
  $("setup-trust").textContent = JSON.stringify(json.trust_policy, null, 2);
  $("setup-permissions").textContent = JSON.stringify(json.permissions_policy, null, 2);
  $("setup-cloudformation").textContent = JSON.stringify(json.cloudformation, null, 2);
  $("setup-terraform").textContent = json.terraform;
}

function showSteps(steps) {
  $("probe").replaceChildren(...(steps || []).map((s) =>
    el("li", { class: "step " + s.status, "data-step": s.step },
      el("span", { class: "name" }, `${s.status.toUpperCase()} ${s.step}`),
      `${s.target}: ${s.message}`)));
}

async function connect(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = {};
  for (const [name, value] of form.entries()) if (value.trim() !== "") body[name] = value.trim();
  $("connect-result").textContent = "Probing…";
  $("probe").replaceChildren();
  const { status, json } = await api("POST", "/connectors", body);
  const result = $("connect-result");
  if (status === 201) {
    result.className = "ok";
    result.textContent = `Connected ${json.id}: verified ${json.verified_bucket_uri} through ${json.verified_role_arn}; the first sync has started.`;
    showSteps(json.steps);
  } else {
    result.className = "error";
    result.textContent = json.error.message;
    showSteps(json.error.steps);
    if (json.error.problems) {
      $("probe").replaceChildren(...json.error.problems.map((p) =>
        el("li", { class: "step fail" }, el("span", { class: "name" }, p.field), p.rule)));
    }
  }
}

// PATCH with the filled-in fields only (a JSON merge patch).
async function edit(event) {
  event.preventDefault();
  const id = $("edit-id").textContent;
  const body = {};
  for (const [name, value] of new FormData(event.target).entries()) {
    if (name === "retarget") body.retarget = true;
    else if (value.trim() !== "") body[name] = value.trim();
  }
  const result = $("edit-result");
  result.textContent = "Checking…";
  const { status, json } = await api("PATCH", `/connectors/${encodeURIComponent(id)}`, body);
  result.className = status === 200 ? "ok" : "error";
  result.textContent = status === 200
    ? `Changed ${id}${json.probed ? " (probed again)" : ""}; next sync ${when(json.next_run)}.`
    : [json.error.message, ...(json.error.problems || []).map((p) => `${p.field}: ${p.rule}`)].join(" ");
  if (status === 200) loadConnectors();
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value);
    show("connectors");
  });
  document.querySelectorAll("nav button[data-view]").forEach((b) =>
    b.addEventListener("click", () => show(b.dataset.view)));
  $("logout").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); showLogin(); });
  $("refresh").addEventListener("click", loadConnectors);
  $("search-form").addEventListener("submit", search);
  $("connect-form").addEventListener("submit", connect);
  $("edit-form").addEventListener("submit", edit);
  if (sessionStorage.getItem(TOKEN_KEY)) show("connectors"); else showLogin();
});
