// Oxios web UI: a small single-page app over the REST API, SSE events and the chat WebSocket.
// Everything the server sends is rendered with textContent, never as HTML.
"use strict";

const $ = (sel) => document.querySelector(sel);
const TOKEN_KEY = "oxios.token";
const WELCOME = "Welcome to Oxios. How can I help you?";
const state = { sessionId: null, socket: null, wsReady: null, pending: new Map(), auditPage: 1, events: null, config: null, tokenPrompt: null };

// -- helpers ------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  return node;
}

function toast(text, isError = false) {
  const box = $("#toast");
  box.textContent = text;
  box.className = "toast" + (isError ? " error" : "");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => box.classList.add("hidden"), isError ? 8000 : 4000);
}
$("#toast").addEventListener("click", () => $("#toast").classList.add("hidden"));

const SHORT_DATE = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };

// Compact local time ("Dec 8, 09:00"; the year only when it is not this one); `seconds` for the audit log.
function when(ts, seconds = false) {
  if (ts === null || ts === undefined || ts === "") return "";
  const d = new Date(typeof ts === "number" ? ts * 1000 : ts);
  if (isNaN(d)) return String(ts);
  const options = { ...SHORT_DATE, ...(seconds ? { second: "2-digit" } : {}) };
  if (d.getFullYear() !== new Date().getFullYear()) options.year = "numeric";
  return d.toLocaleString(undefined, options);
}

function pill(text, cls) {
  return el("span", { class: "pill " + (cls || String(text || "").replace(/[^a-z_]/gi, "")) }, text ?? "");
}

// Long text is clamped to a few lines; a click shows all of it.
function clamp(text, extraClass = "") {
  const box = el("div", { class: "clamp " + extraClass, title: "click to show all or less" }, text ?? "");
  box.addEventListener("click", () => box.classList.toggle("open"));
  return box;
}

function emptyRow(columns, text) { return el("tr", { class: "empty" }, el("td", { colspan: columns, class: "hint" }, text)); }
function emptyCard(text) { return el("li", { class: "empty hint" }, text); }

function confirmed(question) { return window.confirm(question); }

const token = () => localStorage.getItem(TOKEN_KEY) || "";

// One prompt at a time: every request that got a 401 meanwhile waits for the same answer.
function askToken(reason = "") {
  if (state.tokenPrompt) return state.tokenPrompt;
  state.tokenPrompt = new Promise((resolve) => {
    const dialog = $("#token-dialog");
    $("#token-input").value = token();
    $("#token-reason").textContent = reason;
    dialog.returnValue = "";
    dialog.addEventListener("close", () => {
      state.tokenPrompt = null;
      const saved = dialog.returnValue === "save";
      if (saved) {
        const value = $("#token-input").value.trim();
        if (value) localStorage.setItem(TOKEN_KEY, value); else localStorage.removeItem(TOKEN_KEY);
        connectEvents();
        resetSocket();
        loadPersonas().catch(() => {});
        loadApprovalBadge().catch(() => {});
      }
      resolve(saved);
    }, { once: true });
    dialog.showModal();
  });
  return state.tokenPrompt;
}
$("#token-cancel").addEventListener("click", () => $("#token-dialog").close("cancel"));
$("#token-button").addEventListener("click", async () => { if (await askToken()) show(currentView()); });

async function api(method, path, body) {
  for (let attempt = 0; ; attempt++) {
    const headers = { Accept: "application/json" };
    const sent = token();
    if (sent) headers.Authorization = "Bearer " + sent;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      throw new Error("cannot reach the Oxios daemon (" + err.message + ")");
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = text; }
    const error = (data && data.error) || `${res.status} ${res.statusText}`;
    if (res.status === 401 && attempt < 3) {
      if (await askToken(sent ? "The token was refused: " + error : "")) continue;
      throw new Error("an API token is needed: use the Token button");
    }
    if (!res.ok) throw new Error(error);
    return data;
  }
}

const guarded = (fn) => async (...args) => { try { await fn(...args); } catch (err) { toast(err.message, true); } };

// -- navigation ---------------------------------------------------------------------------

const loaders = {};

function currentView() { return (location.hash || "#chat").slice(1); }

function show(view) {
  if (!document.getElementById("view-" + view)) view = "chat";
  document.querySelectorAll(".view").forEach((v) => v.classList.toggle("active", v.id === "view-" + view));
  document.querySelectorAll("#nav a[data-view]").forEach((a) => a.classList.toggle("active", a.dataset.view === view));
  if (loaders[view]) guarded(loaders[view])();
}

window.addEventListener("hashchange", () => show(currentView()));
document.querySelectorAll("[data-refresh]").forEach((b) => b.addEventListener("click", () => guarded(loaders[b.dataset.refresh])()));

// -- chat over the WebSocket --------------------------------------------------------------

function socketUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const query = token() ? "?token=" + encodeURIComponent(token()) : "";
  return `${proto}//${location.host}/api/chat/stream${query}`;
}

function resetSocket() {
  const old = state.socket;
  state.socket = null;
  state.wsReady = null;
  if (old) old.close();
}

function openSocket() {
  if (state.wsReady) return state.wsReady;
  state.wsReady = new Promise((resolve, reject) => {
    const ws = new WebSocket(socketUrl());
    state.socket = ws;
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error("could not connect to the chat stream (is a token needed? use the Token button)"));
    ws.onclose = () => {
      if (state.socket === ws) { state.socket = null; state.wsReady = null; }
      // Only the replies this connection carried are lost.
      for (const [id, entry] of state.pending) {
        if (entry.ws === ws) { finishBubble(entry, "connection closed", true); state.pending.delete(id); }
      }
      syncStop();
    };
    ws.onmessage = (ev) => onFrame(JSON.parse(ev.data));
  });
  return state.wsReady;
}

function addBubble(role, text) {
  const welcome = $("#messages .welcome");
  if (welcome) welcome.remove();
  const bubble = el("div", { class: "msg " + role }, text);
  $("#messages").append(bubble);
  bubble.scrollIntoView({ block: "end" });
  return bubble;
}

function finishBubble(entry, error, isError) {
  entry.bubble.classList.remove("streaming");
  if (isError) {
    entry.bubble.classList.add("error");
    if (!entry.bubble.textContent) entry.bubble.textContent = error;
    else entry.bubble.append(el("span", { class: "meta" }, error));
  }
}

// The Stop button shows while a reply is being written.
function syncStop() { $("#chat-stop").classList.toggle("hidden", state.pending.size === 0); }

function onFrame(frame) {
  const entry = state.pending.get(frame.id);
  if (frame.type === "accepted" && entry) {
    if (!state.sessionId) state.sessionId = frame.session_id;
  } else if (frame.type === "token" && entry) {
    entry.text += frame.content;
    entry.bubble.textContent = entry.text;
    entry.bubble.scrollIntoView({ block: "end" });
  } else if (frame.type === "done" && entry) {
    entry.bubble.textContent = frame.reply || entry.text;
    const took = typeof frame.duration_ms === "number" ? ` · ${(frame.duration_ms / 1000).toFixed(1)} s` : "";
    entry.bubble.append(el("span", { class: "meta" }, `${frame.phase || "done"}${took}`));
    finishBubble(entry);
    state.pending.delete(frame.id);
    if (!state.sessionId) state.sessionId = frame.session_id;
    guarded(loadSessions)();
  } else if (frame.type === "error") {
    if (entry) { finishBubble(entry, frame.error, true); state.pending.delete(frame.id); }
    else toast(frame.error, true);
  }
  syncStop();
}

async function sendMessage(text) {
  const id = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
  addBubble("user", text);
  const bubble = addBubble("assistant streaming", "");
  state.pending.set(id, { bubble, text: "" });
  syncStop();
  try {
    const ws = await openSocket();
    state.pending.get(id).ws = ws;
    const persona = $("#persona-select").value || undefined;
    ws.send(JSON.stringify({ type: "message", id, content: text, session_id: state.sessionId || undefined, persona }));
  } catch (err) {
    finishBubble(state.pending.get(id), err.message, true);
    state.pending.delete(id);
    syncStop();
  }
}

$("#chat-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $("#chat-input");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  sendMessage(text);
});
$("#chat-input").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); $("#chat-form").requestSubmit(); }
});
$("#chat-stop").addEventListener("click", () => {
  for (const [id, entry] of state.pending) {
    if (entry.ws && entry.ws.readyState === WebSocket.OPEN) entry.ws.send(JSON.stringify({ type: "cancel", id }));
  }
});

function newChat() {
  state.sessionId = null;
  $("#messages").replaceChildren(el("div", { class: "welcome" }, WELCOME));
  guarded(loadSessions)();
}
$("#new-chat").addEventListener("click", newChat);

async function loadSessions() {
  const page = await api("GET", "/api/sessions?limit=50");
  const list = $("#session-list");
  if (!page.items.length) { list.replaceChildren(el("li", { class: "empty hint" }, "No conversations yet.")); return; }
  list.replaceChildren(...page.items.map((s) => {
    const title = s.title || s.first_message || s.id.slice(0, 8);
    const del = el("button", { class: "del", title: "Delete this conversation", type: "button", "aria-label": "Delete " + title }, "×");
    del.addEventListener("click", guarded(async (ev) => {
      ev.stopPropagation();
      if (!confirmed(`Delete the conversation "${title.slice(0, 60)}"?`)) return;
      await api("DELETE", "/api/sessions/" + encodeURIComponent(s.id));
      if (state.sessionId === s.id) newChat(); else await loadSessions();
    }));
    const li = el("li", { class: s.id === state.sessionId ? "active" : "", title: `${title}\n${when(s.updated_at)}` },
      el("span", { class: "title" }, title), del);
    li.addEventListener("click", guarded(() => openSession(s.id)));
    return li;
  }));
}

async function openSession(id) {
  const detail = await api("GET", "/api/sessions/" + encodeURIComponent(id));
  state.sessionId = id;
  $("#messages").replaceChildren();
  for (const m of detail.messages) addBubble(m.role === "user" ? "user" : "assistant", m.content);
  if (!detail.messages.length) $("#messages").append(el("div", { class: "welcome" }, "This conversation is empty."));
  await loadSessions();
}

async function loadPersonas() {
  const label = $("#persona-label");
  let page;
  try { page = await api("GET", "/api/personas?limit=100"); } catch (err) { label.classList.add("hidden"); throw err; }
  label.classList.remove("hidden");
  const active = page.items.find((p) => p.active);
  const select = $("#persona-select");
  select.replaceChildren(el("option", { value: "" }, "none"),
    ...page.items.map((p) => el("option", { value: p.name, title: p.description || "" }, p.name)));
  select.value = active ? active.name : "";
}

$("#persona-select").addEventListener("change", guarded(async (ev) => {
  const name = ev.target.value;
  if (name) {
    await api("PUT", "/api/personas/active", { name });
    toast(`Persona ${name} is active`);
  } else {
    await api("DELETE", "/api/personas/active");
    toast("No persona is active");
  }
  await loadPersonas();
}));

loaders.chat = loadSessions;

// -- agents -------------------------------------------------------------------------------

const LIVE_STATES = new Set(["running", "queued"]);

loaders.agents = async () => {
  const page = await api("GET", "/api/agents?limit=100");
  const rows = page.items.map((a) => {
    const actions = el("td", { class: "actions" });
    if (LIVE_STATES.has(a.status)) {
      actions.append(el("button", { class: "danger", type: "button", onclick: guarded(async () => {
        if (!confirmed(`Kill agent ${a.id.slice(0, 8)}?`)) return;
        await api("POST", `/api/agents/${encodeURIComponent(a.id)}/kill`);
        toast("Killed " + a.id.slice(0, 8));
        await loaders.agents();
      }) }, "Kill"));
    }
    const goal = el("td", { class: "wrap" }, clamp(a.goal || ""));
    if (a.error) goal.append(clamp(a.error, "error-text small"));
    return el("tr", { "data-agent": a.id }, el("td", { class: "code nowrap", title: a.id }, a.id.slice(0, 8)), el("td", {}, pill(a.status)),
      goal, el("td", { class: "nowrap" }, when(a.started || a.created)), el("td", { class: "nowrap" }, when(a.finished)), actions);
  });
  $("#agents-body").replaceChildren(...(rows.length ? rows : [emptyRow(6, "No agents yet. An agent starts for each chat message and each cron run.")]));
};

// -- cron ---------------------------------------------------------------------------------

loaders.cron = async () => {
  const page = await api("GET", "/api/cron-jobs?limit=200");
  const rows = page.items.map((j) => {
    const path = `/api/cron-jobs/${encodeURIComponent(j.name)}`;
    const run = el("button", { type: "button", onclick: guarded(async () => {
      await api("POST", path + "/trigger");
      toast("Started " + j.name);
      await loaders.cron();
    }) }, "Run now");
    const pause = el("button", { type: "button", onclick: guarded(async () => {
      await api("POST", path + (j.paused ? "/resume" : "/pause"));
      toast((j.paused ? "Resumed " : "Paused ") + j.name);
      await loaders.cron();
    }) }, j.paused ? "Resume" : "Pause");
    const del = el("button", { class: "danger", type: "button", onclick: guarded(async () => {
      if (!confirmed(`Delete the cron job ${j.name}?`)) return;
      await api("DELETE", path);
      toast("Deleted " + j.name);
      await loaders.cron();
    }) }, "Delete");
    const stateCell = el("td", { class: "nowrap", title: j.pause_reason || "" }, pill(j.state));
    if (j.last_status) {
      stateCell.append(el("div", { class: "hint small", title: when(j.last_run_at) }, "last run ", pill(j.last_status)));
    }
    return el("tr", { "data-job": j.name }, el("td", { class: "nowrap" }, j.name), el("td", { class: "code nowrap" }, j.schedule),
      el("td", { class: "wrap" }, clamp(j.goal)), el("td", { class: "nowrap", title: j.next_run_local || "" }, when(j.next_run_at)),
      stateCell, el("td", { class: "actions" }, run, pause, del));
  });
  $("#cron-body").replaceChildren(...(rows.length ? rows : [emptyRow(6, "No cron jobs yet. Add one above: a name, a cron schedule and a goal.")]));
};

$("#cron-form").addEventListener("submit", guarded(async (ev) => {
  ev.preventDefault();
  const data = Object.fromEntries(new FormData(ev.target));
  await api("POST", "/api/cron-jobs", data);
  ev.target.reset();
  toast("Added " + data.name);
  await loaders.cron();
}));

// -- skills -------------------------------------------------------------------------------

loaders.skills = async () => {
  const page = await api("GET", "/api/skills?limit=500");
  const rows = page.items.map((s) => {
    const enabled = s.status !== "disabled";
    const toggle = el("button", { type: "button", onclick: guarded(async () => {
      await api("POST", `/api/skills/${encodeURIComponent(s.name)}/${enabled ? "disable" : "enable"}`);
      toast((enabled ? "Disabled " : "Enabled ") + s.name);
      await loaders.skills();
    }) }, enabled ? "Disable" : "Enable");
    const view = el("button", { type: "button", onclick: guarded(async () => {
      const c = await api("GET", `/api/skills/${encodeURIComponent(s.name)}/content`);
      $("#skill-title").textContent = `${s.name} · SKILL.md`;
      $("#skill-content").textContent = c.content;
      $("#skill-panel").classList.remove("hidden");
      $("#skill-panel").scrollIntoView();
    }) }, "SKILL.md");
    return el("tr", { "data-skill": s.name }, el("td", { class: "wrap" }, el("div", { class: "title" }, `${s.emoji || ""} ${s.name}`.trim()),
      el("div", { class: "hint" }, s.description || "")), el("td", {}, s.source || ""), el("td", {}, pill(s.status)),
      el("td", { class: "actions" }, view, toggle));
  });
  $("#skills-body").replaceChildren(...(rows.length ? rows : [emptyRow(4, "No skills installed.")]));
};
$("#skill-close").addEventListener("click", () => $("#skill-panel").classList.add("hidden"));

// -- memory -------------------------------------------------------------------------------

function memoryCard(record, extra) {
  const forget = el("button", { class: "danger", type: "button", onclick: guarded(async () => {
    if (!confirmed(`Forget "${(record.name || record.content).slice(0, 60)}"?`)) return;
    await api("DELETE", "/api/memory/" + encodeURIComponent(record.id));
    toast("Forgotten");
    await loaders.memory();
  }) }, "Forget");
  const meta = [record.category, record.type, when(record.created), extra].filter(Boolean).join(" · ");
  return el("li", { "data-memory": record.id }, el("div", { class: "title" }, record.name || record.type || "memory", " ", pill(record.tier)),
    clamp(record.content, "body"), el("div", { class: "row spread" }, el("span", { class: "hint" }, meta), forget));
}

loaders.memory = async () => {
  const page = await api("GET", "/api/memory?limit=50");
  $("#memory-summary").textContent = page.total > page.items.length ? `Newest ${page.items.length} of ${page.total} memories` : `${page.total} memories`;
  $("#memory-list").replaceChildren(...(page.items.length ? page.items.map((r) => memoryCard(r))
    : [emptyCard("No memories yet. Save one above; agents add their own as they work.")]));
};

$("#memory-search").addEventListener("submit", guarded(async (ev) => {
  ev.preventDefault();
  const data = Object.fromEntries(new FormData(ev.target));
  const res = await api("GET", `/api/memory/search?q=${encodeURIComponent(data.q)}&mode=${encodeURIComponent(data.mode)}`);
  $("#memory-summary").textContent = `${res.hits.length} ${res.hits.length === 1 ? "match" : "matches"} for "${data.q}" (${data.mode}); Refresh shows all`;
  $("#memory-list").replaceChildren(...(res.hits.length ? res.hits.map((h) => memoryCard(h.record, `score ${h.score.toFixed(3)}${h.why ? " · " + h.why : ""}`))
    : [emptyCard("No memories match.")]));
}));

$("#memory-form").addEventListener("submit", guarded(async (ev) => {
  ev.preventDefault();
  const data = Object.fromEntries(new FormData(ev.target));
  for (const key of ["name", "category"]) if (!data[key]) delete data[key];
  await api("POST", "/api/memory", data);
  ev.target.reset();
  toast("Saved");
  await loaders.memory();
}));

// -- config -------------------------------------------------------------------------------

function configResult(lines, isError) {
  const box = $("#config-result");
  box.replaceChildren(...lines.map((line) => el("div", {}, line)));
  box.className = "result " + (isError ? "error" : "ok");
}

loaders.config = async () => {
  const config = await api("GET", "/api/config");
  state.config = config;
  $("#config-text").value = JSON.stringify(config, null, 2);
  $("#config-result").className = "result hidden";
};

function diff(before, after, out = {}) {
  for (const [k, v] of Object.entries(after)) {
    if (v && typeof v === "object" && !Array.isArray(v) && before && before[k] && typeof before[k] === "object" && !Array.isArray(before[k])) {
      const sub = diff(before[k], v);
      if (Object.keys(sub).length) out[k] = sub;
    } else if (JSON.stringify(before ? before[k] : undefined) !== JSON.stringify(v)) out[k] = v;
  }
  return out;
}

$("#config-save").addEventListener("click", async () => {
  let edited;
  try { edited = JSON.parse($("#config-text").value); } catch (err) { configResult(["Not valid JSON: " + err.message], true); return; }
  if (!edited || typeof edited !== "object" || Array.isArray(edited)) { configResult(["The config must be a JSON object."], true); return; }
  const changes = diff(state.config, edited);
  if (!Object.keys(changes).length) { configResult(["Nothing changed."], false); return; }
  let res;
  try { res = await api("PUT", "/api/config", changes); } catch (err) { configResult(["Not saved: " + err.message], true); return; }
  const lines = [`Saved: ${res.changed.join(", ") || "nothing new"}.`];
  if (res.applied.length) lines.push(`Applied now: ${res.applied.join(", ")}.`);
  if (res.restart_required.length) lines.push(`Needs a restart (oxios restart): ${res.restart_required.join(", ")}.`);
  configResult(lines, false);
  // What the file now holds is the base for the next diff (keys waiting for a restart keep the edited value).
  state.config = edited;
});

// -- audit --------------------------------------------------------------------------------

loaders.audit = async () => {
  const page = await api("GET", `/api/audit/entries?limit=50&page=${state.auditPage}`);
  const pages = Math.max(1, Math.ceil(page.total / page.limit));
  if (state.auditPage > pages) { state.auditPage = pages; return loaders.audit(); }
  const rows = page.items.map((e) => el("tr", {},
    el("td", {}, e.seq ?? ""), el("td", { class: "nowrap" }, when(e.timestamp || e.ts, true)), el("td", { class: "nowrap" }, e.actor || e.agent_name || ""),
    el("td", { class: "code" }, e.action), el("td", { class: "wrap code" }, clamp(e.resource || "")),
    el("td", {}, e.allowed ? pill("allowed", "ok") : pill("denied", "bad")), el("td", { class: "wrap" }, clamp(e.reason || ""))));
  $("#audit-body").replaceChildren(...(rows.length ? rows : [emptyRow(7, "The audit log is empty.")]));
  $("#audit-page").textContent = `page ${page.page} of ${pages} (${page.total} entries)`;
  $("#audit-prev").disabled = page.page <= 1;
  $("#audit-next").disabled = page.page >= pages;
};
$("#audit-prev").addEventListener("click", () => { state.auditPage = Math.max(1, state.auditPage - 1); guarded(loaders.audit)(); });
$("#audit-next").addEventListener("click", () => { state.auditPage += 1; guarded(loaders.audit)(); });
$("#audit-verify").addEventListener("click", guarded(async () => {
  const box = $("#audit-status");
  box.textContent = "Verifying…";
  box.className = "hint";
  let report;
  try { report = await api("GET", "/api/audit/verify"); } catch (err) { box.textContent = ""; throw err; }
  box.textContent = report.valid ? `✔ chain intact (${report.entries} entries, ${report.checkpoints} checkpoints)`
    : `✘ chain broken at #${report.bad_seq} (${report.problem}): ${report.detail}`;
  box.className = report.valid ? "status ok" : "status error";
}));

// -- approvals ----------------------------------------------------------------------------

const SCOPES = [["once", "this time only"], ["session", "for this session"], ["agent", "for this agent"], ["global", "always"]];

function approvalCard(a) {
  const scope = el("select", { "aria-label": "Approve for", title: "What an approval covers" },
    ...SCOPES.map(([value, label]) => el("option", { value }, label)));
  const decide = (verb) => guarded(async () => {
    const body = verb === "approve" ? { scope: scope.value } : {};
    await api("POST", `/api/approvals/${encodeURIComponent(a.id)}/${verb}`, body);
    toast(verb === "approve" ? "Approved" : "Rejected");
    await loaders.approvals();
  });
  const what = [a.tool || a.kind, a.reason || "needs approval", a.agent_id ? "agent " + a.agent_id : "", "asked " + when(a.created),
    a.expires ? "expires " + when(a.expires) : ""].filter(Boolean).join(" · ");
  return el("li", { "data-approval": a.id }, el("div", { class: "title code" }, clamp(a.resource || a.subject || a.id)),
    el("div", { class: "hint" }, what),
    el("div", { class: "row" }, el("button", { class: "primary", type: "button", onclick: decide("approve") }, "Approve"), scope,
      el("button", { class: "danger", type: "button", onclick: decide("reject") }, "Reject")));
}

function setBadge(total) {
  const badge = $("#approvals-badge");
  badge.textContent = total;
  badge.classList.toggle("hidden", !total);
}

loaders.approvals = async () => {
  const page = await api("GET", "/api/approvals?limit=100");
  setBadge(page.total);
  $("#approvals-list").replaceChildren(...(page.items.length ? page.items.map(approvalCard)
    : [emptyCard("Nothing is waiting for you. Requests from agents appear here as they come.")]));
};

async function loadApprovalBadge() { setBadge((await api("GET", "/api/approvals?limit=1")).total); }

// -- live events (SSE) --------------------------------------------------------------------

const LIVE_EVENTS = ["agent.created", "agent.started", "agent.progress", "agent.completed", "evaluation.result", "tool.started",
  "tool.finished", "tool.denied", "approval.requested", "approval.resolved", "cron.triggered", "cron.completed", "cron.paused",
  "cron.failing", "resync"];

function logEvent(name, data) {
  const log = $("#event-log");
  const placeholder = log.querySelector(".empty");
  if (placeholder) placeholder.remove();
  const subject = data.tool || data.resource || data.what || data.job || data.status || "";
  log.prepend(el("li", {}, `${new Date().toLocaleTimeString()}  ${name}  ${data.agent_id ? data.agent_id.slice(0, 8) : ""} ${subject}`));
  while (log.children.length > 100) log.lastChild.remove();
}

// Bursts of events reload a view once, and only the view on screen.
function refreshSoon(view) {
  clearTimeout(refreshSoon[view]);
  refreshSoon[view] = setTimeout(() => { if (currentView() === view) guarded(loaders[view])(); }, 250);
}

function connectEvents() {
  if (state.events) state.events.close();
  const query = token() ? "?token=" + encodeURIComponent(token()) : "";
  const source = new EventSource("/api/events" + query);
  state.events = source;
  source.onopen = () => $("#live").classList.remove("off");
  source.onerror = () => $("#live").classList.add("off");
  for (const name of LIVE_EVENTS) {
    source.addEventListener(name, (ev) => {
      const data = JSON.parse(ev.data);
      logEvent(name, data);
      if (name === "resync") { refreshSoon(currentView()); guarded(loadApprovalBadge)(); return; }
      if (name.startsWith("agent.")) refreshSoon("agents");
      if (name.startsWith("approval.")) { refreshSoon("approvals"); guarded(loadApprovalBadge)(); }
      if (name === "approval.requested") toast("An agent asks for approval: " + (data.resource || data.tool || ""));
      if (name.startsWith("cron.")) refreshSoon("cron");
    });
  }
}

// -- start --------------------------------------------------------------------------------

connectEvents();
show(currentView());
loadPersonas().catch(() => {});  // optional: the switcher hides itself when personas are not available
loadApprovalBadge().catch(() => {});
