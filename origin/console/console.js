// The agentplane console. Everything it shows comes from the same /mcp and /a2a calls any agent
// makes, so the gateway checks each one (token, scope, rate limit, tenant). The token itself is
// in an HttpOnly cookie the server set at sign-in; calls carry the `Agentplane-Console` header,
// without which the server ignores that cookie (a request another site forges has no such header).
"use strict";

const MCP_VERSION = "2026-07-28";
const CONSOLE_HEADERS = { "Agentplane-Console": "1" };
const TERMINAL = new Set(["completed", "canceled", "failed", "rejected"]);

const $ = (sel, root = document) => root.querySelector(sel);

/** An element with attributes (`on*` are listeners) and children (strings become text). */
function el(tag, attrs = {}, ...children) {
  const node = tag === "svg" || attrs.svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "svg" || v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}
const svg = (tag, attrs = {}) => el(tag, { ...attrs, svg: true });

let toastTimer;
function toast(message) {
  const t = $("#toast");
  t.textContent = message;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 8000);
}

// ---------------------------------------------------------------------------------------------
// Calls

class CallError extends Error {
  constructor(message, status, code) { super(message); this.status = status; this.code = code; }
}

/** Reads a JSON-RPC answer that came as JSON or as an SSE stream of messages. */
async function rpcAnswer(response, id) {
  const type = response.headers.get("content-type") || "";
  if (type.includes("text/event-stream")) {
    const text = await response.text();
    for (const data of sseData(text)) {
      const msg = JSON.parse(data);
      if (msg.id === id && ("result" in msg || "error" in msg)) return msg;
    }
    throw new CallError("the stream ended without an answer", response.status);
  }
  if (!type.includes("json")) throw new CallError(`${response.status} ${response.statusText}`, response.status);
  return response.json();
}

function* sseData(text) {
  for (const block of text.split(/\r?\n\r?\n/)) {
    const lines = block.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, ""));
    if (lines.length) yield lines.join("\n");
  }
}

let nextId = 1;
async function post(path, body, headers) {
  const id = nextId++;
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", ...CONSOLE_HEADERS, ...headers },
    body: JSON.stringify({ jsonrpc: "2.0", id, ...body }),
  });
  return { id, response };
}

async function checkStatus(response) {
  if (response.status === 401) { signedOut("Your session has ended; sign in again."); throw new CallError("signed out", 401); }
  if (response.status === 429) {
    const after = response.headers.get("retry-after");
    throw new CallError(`Rate limit reached${after ? `; try again in ${after} s` : ""}.`, 429);
  }
}

/** A JSON-RPC answer's result, or a CallError with the server's message. */
async function settle(id, response) {
  await checkStatus(response);
  let msg;
  try { msg = await rpcAnswer(response, id); } catch (e) { throw e instanceof CallError ? e : new CallError(String(e), response.status); }
  if (msg.error) throw new CallError(msg.error.message || "error", response.status, msg.error.code);
  return msg.result;
}

/** An MCP tool call (stateless 2026-07-28), giving its structured content. */
async function tool(name, args) {
  const params = {
    name, arguments: args,
    _meta: { "io.modelcontextprotocol/protocolVersion": MCP_VERSION, "io.modelcontextprotocol/clientCapabilities": {} },
  };
  const { id, response } = await post("/mcp", { method: "tools/call", params }, {
    Accept: "application/json, text/event-stream", "MCP-Protocol-Version": MCP_VERSION,
    "Mcp-Method": "tools/call", "Mcp-Name": name,
  });
  const result = await settle(id, response);
  if (result.isError) {
    const text = (result.content || []).map((c) => c.text).filter(Boolean).join(" ");
    throw new CallError(text || `${name} failed`, 200);
  }
  return result.structuredContent;
}

const A2A_HEADERS = { "A2A-Version": "1.0" };
async function a2a(method, params) {
  const { id, response } = await post("/a2a", { method, params }, { ...A2A_HEADERS, Accept: "application/json" });
  return settle(id, response);
}

/** An A2A streaming call: `onEvent` gets each StreamResponse as it arrives. */
async function a2aStream(method, params, onEvent, signal) {
  const { id, response } = await post("/a2a", { method, params }, { ...A2A_HEADERS, Accept: "text/event-stream" });
  await checkStatus(response);
  const type = response.headers.get("content-type") || "";
  if (!type.includes("text/event-stream")) {
    await settle(id, response); // an error answered as JSON
    return;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const abort = () => reader.cancel().catch(() => {});
  signal?.addEventListener("abort", abort);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const blocks = buffer.split(/\r?\n\r?\n/);
      buffer = blocks.pop();
      for (const data of sseData(blocks.join("\n\n") + "\n\n")) {
        const msg = JSON.parse(data);
        if (msg.error) throw new CallError(msg.error.message, 200, msg.error.code);
        if (msg.result) onEvent(msg.result);
      }
    }
  } finally {
    signal?.removeEventListener("abort", abort);
  }
}

// ---------------------------------------------------------------------------------------------
// Session

let me = null;

async function loadSession() {
  const r = await fetch("/console/session", { credentials: "same-origin", headers: CONSOLE_HEADERS });
  if (!r.ok) return null;
  return r.json();
}

function showSignedIn(who) {
  me = who;
  $("#whoami").textContent = `tenant ${who.tenant} · ${who.subject}${who.tier ? ` · ${who.tier}` : ""}`;
  $("#sign-out").hidden = false;
  $("#nav").hidden = false;
  document.body.dataset.signedIn = "true";
}

function signedOut(message) {
  me = null;
  delete document.body.dataset.signedIn;
  $("#whoami").textContent = "";
  $("#sign-out").hidden = true;
  $("#nav").hidden = true;
  showPage("sign-in");
  const err = $("#sign-in-error");
  err.textContent = message || "";
  err.hidden = !message;
}

async function signIn(event) {
  event.preventDefault();
  const token = $("#token").value.trim();
  const button = $("#sign-in");
  button.disabled = true;
  try {
    const r = await fetch("/console/session", {
      method: "POST", credentials: "same-origin",
      headers: { Authorization: `Bearer ${token}`, ...CONSOLE_HEADERS },
    });
    if (!r.ok) {
      let why = `${r.status} ${r.statusText}`;
      try { const body = await r.json(); why = body.error?.message || body.error || why; } catch { /* not JSON */ }
      throw new Error(why);
    }
    $("#token").value = "";
    $("#sign-in-error").hidden = true;
    showSignedIn(await r.json());
    if (!location.hash || location.hash === "#/") location.hash = "#/search"; else route();
  } catch (e) {
    const err = $("#sign-in-error");
    err.textContent = `Sign-in refused: ${e.message}`;
    err.hidden = false;
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  await fetch("/console/session", { method: "DELETE", credentials: "same-origin", headers: CONSOLE_HEADERS });
  signedOut("");
}

// ---------------------------------------------------------------------------------------------
// Pages

const PAGES = ["sign-in", "search", "documents", "document", "tasks", "task", "usage", "operator"];
let pageAbort = null;

function showPage(name) {
  for (const p of PAGES) {
    const section = $(`#page-${p}`);
    section.hidden = p !== name;
    delete section.dataset.ready;
  }
  for (const a of document.querySelectorAll("nav a")) {
    if (a.id === `nav-${name}` || a.id === `nav-${name}s`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${name} · agentplane console`;
}

function ready(name) { $(`#page-${name}`).dataset.ready = "true"; }

async function route() {
  pageAbort?.abort();
  pageAbort = new AbortController();
  const signal = pageAbort.signal;
  const [, page = "search", arg] = (location.hash || "#/search").split("/");
  if (page === "operator") { showPage("operator"); return operatorPage(); }
  if (!me) { signedOut(""); return; }
  try {
    switch (page) {
      case "documents": return arg ? await documentPage(decodeURIComponent(arg)) : await documentsPage();
      case "tasks": return arg ? await taskPage(decodeURIComponent(arg), signal) : await tasksPage();
      case "usage": return await usagePage();
      default: showPage("search"); ready("search"); $("#search-query").focus();
    }
  } catch (e) {
    if (e.status !== 401) toast(e.message);
  }
}

// Search ---------------------------------------------------------------------------------------

/** The snippet as text nodes with the query's words in <mark>: no markup from the document. */
function highlighted(text, query) {
  const words = [...new Set(query.toLowerCase().match(/[\p{L}\p{N}]{2,}/gu) || [])];
  if (!words.length) return [text];
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const re = new RegExp(`(${escaped.join("|")})`, "giu");
  return text.split(re).map((part, i) => (i % 2 ? el("mark", { text: part }) : part));
}

const fmt = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));

function ranks(hit) {
  const parts = [];
  parts.push(hit.bm25_rank ? `BM25 #${hit.bm25_rank} (score ${fmt(hit.bm25_score, 2)})` : "BM25 –");
  parts.push(hit.vector_rank ? `vector #${hit.vector_rank} (${fmt(hit.vector_score)})` : "vector –");
  parts.push(`fused ${fmt(hit.score, 4)}`);
  return parts.join(" · ");
}

async function runSearch(event) {
  event.preventDefault();
  const query = $("#search-query").value.trim();
  if (!query) return;
  const list = $("#search-results");
  delete list.dataset.ready;
  $("#search-run").disabled = true;
  const started = performance.now();
  try {
    const result = await tool("hybrid_search", {
      query,
      limit: Number($("#search-limit").value) || 10,
      bm25_weight: Number($("#bm25-weight").value),
      vector_weight: Number($("#vector-weight").value),
      rrf_k: Number($("#rrf-k").value),
    });
    $("#search-mode").textContent = `${result.mode} · ${result.lexical_backend} ·`;
    $("#search-timing").textContent = `${result.hits.length} hits in ${Math.round(performance.now() - started)} ms`;
    const notice = $("#search-notice");
    notice.textContent = result.notice || "";
    notice.hidden = !result.notice;
    list.replaceChildren(...result.hits.map((hit) => el("li", { class: "hit" },
      el("a", { class: "hit-title", href: `#/documents/${hit.id}` }, hit.title || "(untitled)"),
      el("div", { class: "hit-ranks" }, ranks(hit)),
      el("p", { class: "hit-snippet" }, highlighted(hit.snippet || "", query)))));
    if (!result.hits.length) list.replaceChildren(el("li", { class: "meta", text: "No documents match." }));
  } catch (e) {
    if (e.status !== 401) toast(`Search failed: ${e.message}`);
  } finally {
    $("#search-run").disabled = false;
    list.dataset.ready = "true";
  }
}

// Documents ------------------------------------------------------------------------------------

let docCursor = null;

function docRow(d) {
  return el("tr", { class: "doc-row", "data-id": d.id },
    el("td", {}, el("a", { class: "doc-title", href: `#/documents/${d.id}` }, d.title || "(untitled)")),
    el("td", {}, el("span", { class: `doc-embedding pill ${d.has_embedding ? "ok" : "wait"}` }, d.has_embedding ? "embedded" : "pending")),
    el("td", {}, new Date(d.updated_at).toLocaleString()));
}

async function loadDocuments(more) {
  const args = { limit: 25 };
  const filter = $("#doc-filter").value.trim();
  if (filter) args.title_contains = filter;
  if (more && docCursor) args.cursor = docCursor;
  const page = await tool("list_documents", args);
  const body = $("#doc-table tbody");
  const rows = page.documents.map(docRow);
  if (more) body.append(...rows); else body.replaceChildren(...rows);
  if (!more && !rows.length) body.replaceChildren(el("tr", {}, el("td", { colspan: 3, class: "meta" }, filter ? "No titles match." : "No documents yet.")));
  docCursor = page.next_cursor;
  $("#doc-more").hidden = !docCursor;
  if (page.total !== null && page.total !== undefined) {
    $("#doc-count").textContent = `${page.total} document${page.total === 1 ? "" : "s"}`;
    $("#embedding-backlog").textContent = page.embedding_backlog
      ? `${page.embedding_backlog} documents waiting for an embedding` : "no embedding backlog";
  }
}

async function documentsPage() {
  showPage("documents");
  await loadDocuments(false);
  ready("documents");
}

/** Documents from a file: JSONL as one per line, anything else as one titled by its heading. */
async function documentsOf(file) {
  const text = await file.text();
  if (file.name.toLowerCase().endsWith(".jsonl")) {
    return text.split(/\r?\n/).map((line, i) => [line.trim(), i + 1]).filter(([line]) => line).map(([line, n]) => {
      let doc;
      try { doc = JSON.parse(line); } catch { throw new Error(`${file.name} line ${n}: not JSON`); }
      if (typeof doc.content !== "string" || !doc.content) throw new Error(`${file.name} line ${n}: needs "content"`);
      const out = { title: String(doc.title ?? ""), content: doc.content };
      if (doc.metadata && typeof doc.metadata === "object") out.metadata = doc.metadata;
      if (doc.id) out.id = doc.id;
      return out;
    });
  }
  if (!text.trim()) throw new Error(`${file.name} is empty`);
  const heading = text.match(/^#\s+(.+)$/m);
  return [{ title: heading ? heading[1].trim() : file.name.replace(/\.[^.]+$/, ""), content: text, metadata: { source: file.name } }];
}

async function upload() {
  const files = [...$("#doc-files").files];
  const status = $("#upload-status");
  const bar = $("#upload-progress");
  delete status.dataset.done;
  if (!files.length) { status.textContent = "Choose one or more files first."; return; }
  $("#doc-upload").disabled = true;
  const failures = [];
  try {
    let docs = [];
    for (const f of files) {
      try { docs = docs.concat(await documentsOf(f)); } catch (e) { failures.push(e.message); }
    }
    bar.max = Math.max(docs.length, 1);
    bar.value = 0;
    bar.hidden = false;
    let done = 0;
    for (const doc of docs) {
      try { await tool("upsert_document", doc); done += 1; } catch (e) {
        if (e.status === 401) return;
        failures.push(`${doc.title || "(untitled)"}: ${e.message}`);
      }
      bar.value += 1;
      status.textContent = `uploading… ${bar.value} of ${docs.length}`;
    }
    status.textContent = `uploaded ${done} of ${docs.length}${failures.length ? `; failed: ${failures.join("; ")}` : ""}`;
    status.dataset.done = "true";
    $("#doc-files").value = "";
    await loadDocuments(false);
  } finally {
    $("#doc-upload").disabled = false;
  }
}

async function documentPage(id) {
  showPage("document");
  const doc = await tool("get_document", { id });
  $("#doc-view-title").textContent = doc.title || "(untitled)";
  const meta = Object.keys(doc.metadata || {}).length ? ` · metadata ${JSON.stringify(doc.metadata)}` : "";
  $("#doc-view-meta").textContent = `${doc.id}${doc.external_id ? ` (${doc.external_id})` : ""} · updated ${new Date(doc.updated_at).toLocaleString()}${meta}`;
  $("#doc-view-content").textContent = doc.content;
  $("#doc-delete").dataset.id = doc.id;
  ready("document");
}

async function deleteDocument() {
  const id = $("#doc-delete").dataset.id;
  if (!id || !confirm("Delete this document? This cannot be undone.")) return;
  try {
    await tool("delete_document", { id });
    location.hash = "#/documents";
  } catch (e) { if (e.status !== 401) toast(`Delete failed: ${e.message}`); }
}

// Tasks ----------------------------------------------------------------------------------------

const stateName = (s) => String(s || "").replace(/^TASK_STATE_/, "").toLowerCase().replace(/_/g, "-");
const textOf = (parts) => (parts || []).map((p) => p.text ?? p.root?.text).filter(Boolean).join("\n");
const dataOf = (parts) => (parts || []).map((p) => (p.data && typeof p.data === "object" && "data" in p.data && Object.keys(p.data).length === 1 ? p.data.data : p.data)).filter(Boolean);

let taskCursor = null;
async function loadTasks(more) {
  const params = { pageSize: 20 };
  if (more && taskCursor) params.pageToken = taskCursor;
  const page = await a2a("ListTasks", params);
  const rows = (page.tasks || []).map((t) => el("tr", { class: "task-row", "data-id": t.id },
    el("td", {}, el("a", { href: `#/tasks/${t.id}` }, el("code", {}, t.id))),
    el("td", {}, el("span", { class: "task-state" }, stateName(t.status?.state))),
    el("td", {}, t.status?.timestamp ? new Date(t.status.timestamp).toLocaleString() : "")));
  const body = $("#task-table tbody");
  if (more) body.append(...rows); else body.replaceChildren(...rows);
  if (!more && !rows.length) body.replaceChildren(el("tr", {}, el("td", { colspan: 3, class: "meta" }, "No tasks yet.")));
  taskCursor = page.nextPageToken || null;
  $("#task-more").hidden = !taskCursor;
}

async function tasksPage() {
  showPage("tasks");
  await loadTasks(false);
  ready("tasks");
}

/** The task page's view of one task, fed by GetTask and stream events alike. */
class TaskView {
  constructor(id) {
    this.id = id;
    this.artifacts = new Map();
    this.started = performance.now();
    $("#task-id").textContent = id || "…";
    $("#task-state").textContent = "…";
    $("#task-events").replaceChildren();
    $("#task-artifacts").replaceChildren();
    $("#task-error").hidden = true;
    $("#task-cancel").hidden = true;
    delete $("#page-task").dataset.final;
  }

  setId(id) {
    if (this.id) return;
    this.id = id;
    $("#task-id").textContent = id;
    history.replaceState(null, "", `#/tasks/${id}`);
  }

  setState(state) {
    const name = stateName(state);
    $("#task-state").textContent = name;
    $("#task-cancel").hidden = TERMINAL.has(name) || name === "";
    if (TERMINAL.has(name)) $("#page-task").dataset.final = "true";
  }

  event(kind, detail) {
    if (detail && detail.length > 160) detail = `${detail.slice(0, 157)}…`;
    const at = ((performance.now() - this.started) / 1000).toFixed(2);
    $("#task-events").append(el("li", { class: "task-event" }, el("time", {}, `+${at}s`), `${kind}${detail ? `: ${detail}` : ""}`));
  }

  artifact(a, append) {
    const prev = append ? this.artifacts.get(a.artifactId) : null;
    const parts = prev ? prev.parts.concat(a.parts || []) : a.parts || [];
    this.artifacts.set(a.artifactId, { ...a, parts });
    $("#task-artifacts").replaceChildren(...[...this.artifacts.values()].map(renderArtifact));
  }

  task(t) {
    this.setId(t.id);
    for (const m of t.history || []) this.event(m.role === "ROLE_AGENT" || m.role === "agent" ? "agent" : "user", textOf(m.parts));
    for (const a of t.artifacts || []) this.artifact(a, false);
    this.setState(t.status?.state);
    this.event("status", stateName(t.status?.state) + (t.status?.message ? ` · ${textOf(t.status.message.parts)}` : ""));
  }

  /** One StreamResponse: `task`, `message`, `statusUpdate` or `artifactUpdate`. */
  stream(r) {
    if (r.task) this.task(r.task);
    else if (r.statusUpdate) {
      const s = r.statusUpdate;
      this.setId(s.taskId);
      this.setState(s.status?.state);
      this.event("status", stateName(s.status?.state) + (s.status?.message ? ` · ${textOf(s.status.message.parts)}` : ""));
    } else if (r.artifactUpdate) {
      const a = r.artifactUpdate;
      this.setId(a.taskId);
      this.artifact(a.artifact, a.append);
      this.event("artifact", a.artifact?.name || a.artifact?.artifactId);
    } else if (r.message) {
      this.event("message", textOf(r.message.parts));
    }
  }
}

/** An answer's text with `[doc:<id>]` citations as links to the cited documents. */
function renderArtifact(a) {
  const text = textOf(a.parts);
  const titles = new Map();
  for (const d of dataOf(a.parts)) for (const c of d.citations || []) titles.set(String(c.id), c.title);
  const nodes = [];
  let last = 0;
  for (const m of text.matchAll(/\[doc:([^\]\s]+)\]/g)) {
    nodes.push(text.slice(last, m.index));
    const id = m[1];
    nodes.push(el("a", { class: "citation", href: `#/documents/${id}`, title: titles.get(id) || id }, `[${titles.get(id) || id.slice(0, 8)}]`));
    last = m.index + m[0].length;
  }
  nodes.push(text.slice(last));
  const sources = [...titles].map(([id, title]) => el("li", {}, el("a", { class: "citation", href: `#/documents/${id}` }, title || id)));
  return el("div", { class: "artifact" },
    el("strong", {}, a.name || a.artifactId), el("br"), ...nodes,
    sources.length ? el("ul", { class: "citations" }, sources) : null);
}

let view = null;
async function follow(method, params, signal) {
  try {
    await a2aStream(method, params, (r) => view.stream(r), signal);
  } catch (e) {
    if (signal.aborted || e.status === 401) return;
    $("#task-error").textContent = e.message;
    $("#task-error").hidden = false;
  }
}

async function startTask(event) {
  event.preventDefault();
  const text = $("#task-input").value.trim();
  if (!text) return;
  pageAbort?.abort();
  pageAbort = new AbortController();
  const signal = pageAbort.signal;
  // The page is drawn first; the hash follows once the task has an id (no second render).
  showPage("task");
  view = new TaskView(null);
  view.event("sent", `${$("#task-kind").value}: ${text}`);
  $("#task-input").value = "";
  const message = {
    messageId: crypto.randomUUID(), role: "ROLE_USER", parts: [{ text }],
    metadata: { skill: $("#task-kind").value },
  };
  await follow("SendStreamingMessage", { message }, signal);
  ready("task");
}

async function taskPage(id, signal) {
  showPage("task");
  view = new TaskView(id);
  let task;
  try {
    task = await a2a("GetTask", { id, historyLength: 20 });
  } catch (e) {
    if (e.status === 401) return;
    // Another tenant's task is indistinguishable from none.
    $("#task-error").textContent = /not found/i.test(e.message) ? "task not found" : e.message;
    $("#task-error").hidden = false;
    ready("task");
    return;
  }
  view.task(task);
  ready("task");
  if (!TERMINAL.has(stateName(task.status?.state))) await follow("SubscribeToTask", { id }, signal);
}

async function cancelTask() {
  if (!view?.id) return;
  try {
    const t = await a2a("CancelTask", { id: view.id });
    view.setState(t.status?.state);
    view.event("status", stateName(t.status?.state));
  } catch (e) { if (e.status !== 401) toast(`Cancel failed: ${e.message}`); }
}

// Usage ----------------------------------------------------------------------------------------

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
let usageRows = [];

const money = (micros) => (micros / 1e6).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 6 });

function measure(row, what) {
  if (what === "tokens") return row.input_tokens + row.output_tokens;
  if (what === "cost") return row.cost_micros / 1e6;
  return row.calls;
}

/** Stacked bars: one per day, a segment per model. */
function drawUsage(days) {
  const what = $("#usage-measure").value;
  const chart = $("#usage-chart");
  const W = 640, H = 220, left = 44, bottom = 24, top = 8;
  const today = new Date();
  const dayList = [];
  for (let i = days - 1; i >= 0; i -= 1) {
    const d = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - i));
    dayList.push(d.toISOString().slice(0, 10));
  }
  const models = [...new Set(usageRows.map((r) => `${r.kind} · ${r.model}`))];
  const stacks = new Map(dayList.map((d) => [d, []]));
  for (const r of usageRows) stacks.get(r.day)?.push({ model: `${r.kind} · ${r.model}`, v: measure(r, what), row: r });
  const max = Math.max(1e-9, ...[...stacks.values()].map((s) => s.reduce((a, b) => a + b.v, 0)));
  const bw = (W - left - 4) / dayList.length;
  const y = (v) => H - bottom - (v / max) * (H - bottom - top);
  const nodes = [svg("line", { x1: left, y1: H - bottom, x2: W, y2: H - bottom, stroke: "currentColor", "stroke-opacity": ".3" })];
  for (const frac of [0, 0.5, 1]) {
    nodes.push(svg("text", { x: left - 4, y: y(max * frac) + 4, "text-anchor": "end" }));
    nodes[nodes.length - 1].textContent = what === "cost" ? (max * frac).toFixed(2) : Math.round(max * frac).toLocaleString();
  }
  dayList.forEach((day, i) => {
    let base = 0;
    for (const seg of stacks.get(day)) {
      const rect = svg("rect", {
        class: "bar", x: left + i * bw + 1, width: Math.max(1, bw - 2), y: y(base + seg.v), height: Math.max(0, y(base) - y(base + seg.v)),
        fill: COLORS[models.indexOf(seg.model) % COLORS.length],
      });
      const title = svg("title");
      title.textContent = `${day} ${seg.model}: ${seg.row.calls} calls, ${seg.row.input_tokens + seg.row.output_tokens} tokens, ${money(seg.row.cost_micros)}`;
      rect.append(title);
      nodes.push(rect);
      base += seg.v;
    }
    if (i % Math.ceil(dayList.length / 7) === 0) {
      const t = svg("text", { x: left + i * bw + bw / 2, y: H - 6, "text-anchor": "middle" });
      t.textContent = day.slice(5);
      nodes.push(t);
    }
  });
  chart.replaceChildren(...nodes);
  const calls = usageRows.reduce((a, r) => a + r.calls, 0);
  const tokens = usageRows.reduce((a, r) => a + r.input_tokens, 0);
  chart.dataset.calls = String(calls);
  chart.dataset.tokens = String(tokens);
  $("#usage-caption").textContent = `${what} per UTC day over ${days} days: ${calls.toLocaleString()} calls, ${tokens.toLocaleString()} input tokens, ${money(usageRows.reduce((a, r) => a + r.cost_micros, 0))} spent`;
  $("#usage-legend").replaceChildren(...models.map((m, i) => el("li", {}, el("span", { class: "swatch", "data-color": i }), m)));
  // Colours through the CSSOM: the page's policy allows no inline style attributes.
  for (const s of document.querySelectorAll("#usage-legend .swatch")) s.style.background = COLORS[Number(s.dataset.color) % COLORS.length];
}

function csvCell(v) {
  const s = String(v ?? "");
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function renderBudgets(budgets) {
  const box = $("#budgets");
  if (!budgets?.length) { box.replaceChildren(el("p", { class: "meta" }, "No budget applies to this tenant.")); return; }
  box.replaceChildren(...budgets.map((b) => {
    const ratio = b.limit_micros ? b.spent_micros / b.limit_micros : 1;
    const label = b.scope === "tenant" ? `Tenant budget (tier ${b.tier})` : "Your own budget";
    const warn = ratio >= 1 ? "Spent: paid work is refused until the budget renews."
      : ratio >= 0.8 ? `Warning: ${Math.round(ratio * 100)} % used.` : "";
    return el("div", { class: `budget${ratio >= 1 ? " over" : ""}` },
      el("label", {}, label, el("progress", { value: Math.min(b.spent_micros, b.limit_micros), max: b.limit_micros || 1, "aria-label": label })),
      el("div", { class: "budget-remaining" },
        `${money(Math.max(0, b.limit_micros - b.spent_micros))} of ${money(b.limit_micros)} left today`,
        b.renews_at ? ` · renews ${new Date(b.renews_at).toLocaleString()}` : ""),
      warn ? el("div", { class: "budget-warning" }, warn) : null);
  }));
}

async function usagePage() {
  showPage("usage");
  const days = Number($("#usage-days").value);
  const usage = await tool("usage", { days });
  usageRows = usage.days;
  drawUsage(days);
  renderBudgets(usage.budgets);
  const header = ["day", "kind", "provider", "model", "calls", "input_tokens", "output_tokens", "cost_micros"];
  const csv = [header.join(",")].concat(usageRows.map((r) => header.map((h) => csvCell(r[h])).join(","))).join("\n") + "\n";
  const link = $("#usage-export");
  if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
  ready("usage");
}

// Operator -------------------------------------------------------------------------------------

let operatorTimer = null;
let lastTally = null;

async function operatorDetails() {
  const r = await fetch("/console/operator/details", { credentials: "same-origin", headers: CONSOLE_HEADERS });
  if (r.status === 404) throw new Error("The operator's view is served by the origin only (or no operator_token is configured there).");
  if (r.status === 401) return null;
  if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
  return r.json();
}

function renderOperator(d) {
  const rd = d.readiness;
  $("#op-status").textContent = rd.status;
  const segments = rd.lexical_index_segments;
  $("#op-lexical").textContent = `${rd.lexical_backend}${segments ? ` · ${segments} index segment${segments === 1 ? "" : "s"}` : ""}`;
  const e = rd.embedding;
  $("#op-embedding").textContent = e ? `${e.provider} · ${e.model} · ${e.dimensions} dimensions` : "none (lexical search only)";
  const c = e?.circuit;
  $("#op-circuit").textContent = !e ? "–" : !c ? "none (the local model has no circuit)"
    : typeof c === "string" ? c.replace(/_/g, " ") : JSON.stringify(c);
  const b = e?.backfill;
  $("#op-backfill").textContent = !b ? "–"
    : `${b.pending} waiting · ${b.embedded_since_start} embedded since start${b.last_error ? ` · last error: ${b.last_error}` : ""}`;
  const tiers = d.tiers.tiers || {};
  $("#op-tiers tbody").replaceChildren(...Object.entries(tiers).map(([name, q]) => el("tr", {},
    el("td", {}, name + (name === d.tiers.default_tier ? " (default)" : "")),
    el("td", { class: "num" }, `${q.count} / ${q.period_secs} s`), el("td", { class: "num" }, String(q.burst)),
    el("td", { class: "num" }, d.budgets.tiers[name] !== undefined ? money(d.budgets.tiers[name]) : "none"))));
  const now = performance.now();
  const prev = lastTally;
  lastTally = { at: now, by: new Map(d.tenants.map((t) => [t.tenant, t])) };
  const rate = (t, key) => {
    const p = prev?.by.get(t.tenant);
    return p ? ((t[key] - p[key]) / ((now - prev.at) / 1000)).toFixed(2) : "–";
  };
  $("#op-tenants tbody").replaceChildren(...d.tenants.map((t) => el("tr", {},
    el("td", {}, el("code", {}, t.tenant)), el("td", { class: "num" }, String(t.requests)),
    el("td", { class: "num" }, String(t.errors)), el("td", { class: "num" }, rate(t, "requests")),
    el("td", { class: "num" }, rate(t, "errors")))));
}

async function operatorPage() {
  clearTimeout(operatorTimer);
  const err = $("#operator-error");
  err.hidden = true;
  try {
    const d = await operatorDetails();
    $("#operator-sign-in-box").hidden = !!d;
    $("#operator-details").hidden = !d;
    if (d) {
      renderOperator(d);
      operatorTimer = setTimeout(() => { if (location.hash.startsWith("#/operator")) operatorPage(); }, 5000);
    }
  } catch (e) {
    err.textContent = e.message;
    err.hidden = false;
  }
  ready("operator");
}

async function operatorSignIn(event) {
  event.preventDefault();
  const token = $("#operator-token").value;
  const r = await fetch("/console/operator/session", {
    method: "POST", credentials: "same-origin", headers: { Authorization: `Bearer ${token}`, ...CONSOLE_HEADERS },
  });
  $("#operator-token").value = "";
  if (!r.ok) {
    const err = $("#operator-error");
    err.textContent = r.status === 404 ? "The operator's view is off here (origin only, with an operator_token)." : "That is not the operator token.";
    err.hidden = false;
    return;
  }
  lastTally = null;
  operatorPage();
}

async function operatorSignOut() {
  await fetch("/console/operator/session", { method: "DELETE", credentials: "same-origin", headers: CONSOLE_HEADERS });
  clearTimeout(operatorTimer);
  operatorPage();
}

// ---------------------------------------------------------------------------------------------

function bindRange(id, digits) {
  const input = $(`#${id}`);
  const out = $(`#${id}-out`);
  const show = () => { out.textContent = Number(input.value).toFixed(digits); };
  input.addEventListener("input", show);
  show();
}

let filterTimer;
async function main() {
  $("#sign-in-form").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", signOut);
  $("#search-form").addEventListener("submit", runSearch);
  bindRange("bm25-weight", 1);
  bindRange("vector-weight", 1);
  bindRange("rrf-k", 0);
  $("#doc-more").addEventListener("click", () => loadDocuments(true).catch((e) => toast(e.message)));
  $("#doc-filter").addEventListener("input", () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => loadDocuments(false).catch((e) => toast(e.message)), 250);
  });
  $("#doc-upload").addEventListener("click", () => upload().catch((e) => toast(e.message)));
  $("#doc-delete").addEventListener("click", deleteDocument);
  $("#task-form").addEventListener("submit", startTask);
  $("#task-more").addEventListener("click", () => loadTasks(true).catch((e) => toast(e.message)));
  $("#task-cancel").addEventListener("click", cancelTask);
  $("#usage-days").addEventListener("change", () => usagePage().catch((e) => toast(e.message)));
  $("#usage-measure").addEventListener("change", () => drawUsage(Number($("#usage-days").value)));
  $("#operator-form").addEventListener("submit", operatorSignIn);
  $("#operator-sign-out").addEventListener("click", operatorSignOut);
  window.addEventListener("hashchange", route);
  const who = await loadSession();
  if (who) showSignedIn(who);
  route();
}

main();
