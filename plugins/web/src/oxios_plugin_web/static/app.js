// Oxios web UI: a small single-page app over the REST API, SSE events and the chat WebSocket.
// Everything the server sends is rendered with textContent, never as HTML.
"use strict";

const $ = (sel) => document.querySelector(sel);
const TOKEN_KEY = "oxios.token";
const state = { sessionId: null, ws: null, wsReady: null, pending: new Map(), auditPage: 1, events: null };

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
  toast.timer = setTimeout(() => box.classList.add("hidden"), 4000);
}

function when(ts) {
  if (!ts) return "";
  const d = new Date(typeof ts === "number" ? ts * 1000 : ts);
  return isNaN(d) ? String(ts) : d.toLocaleString();
}

function pill(text) { return el("span", { class: "pill " + String(text || "").replace(/[^a-z_]/gi, "") }, text ?? ""); }

const token = () => localStorage.getItem(TOKEN_KEY) || "";

function askToken() {
  return new Promise((resolve) => {
    const dialog = $("#token-dialog");
    $("#token-input").value = token();
    dialog.returnValue = "";
    dialog.onclose = () => {
      if (dialog.returnValue === "save") {
        localStorage.setItem(TOKEN_KEY, $("#token-input").value.trim());
        connectEvents();
        resetSocket();
        loadPersonas();
        loadApprovalBadge().catch(() => {});
      }
      resolve(dialog.returnValue === "save");
    };
    dialog.showModal();
  });
}

async function api(method, path, body) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const headers = { Accept: "application/json" };
    if (token()) headers.Authorization = "Bearer " + token();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 401 && attempt === 0 && (await askToken())) continue;
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = text; }
    if (!res.ok) throw new Error((data && data.error) || `${res.status} ${res.statusText}`);
    return data;
  }
  throw new Error("authentication required");
}

const guarded = (fn) => async (...args) => { try { await fn(...args); } catch (err) { toast(err.message, true); } };

// -- navigation ---------------------------------------------------------------------------

const loaders = {};

function show(view) {
  if (!document.getElementById("view-" + view)) view = "chat";
  document.querySelectorAll(".view").forEach((v) => v.classList.toggle("active", v.id === "view-" + view));
  document.querySelectorAll("#nav a[data-view]").forEach((a) => a.classList.toggle("active", a.dataset.view === view));
  if (loaders[view]) guarded(loaders[view])();
}

window.addEventListener("hashchange", () => show(location.hash.slice(1)));
document.querySelectorAll("[data-refresh]").forEach((b) => b.addEventListener("click", () => guarded(loaders[b.dataset.refresh])()));

// -- chat over the WebSocket --------------------------------------------------------------

function socketUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const query = token() ? "?token=" + encodeURIComponent(token()) : "";
  return `${proto}//${location.host}/api/chat/stream${query}`;
}

function resetSocket() {
  if (state.ws) state.ws.close();
  state.ws = null;
  state.wsReady = null;
}

function openSocket() {
  if (state.wsReady) return state.wsReady;
  state.wsReady = new Promise((resolve, reject) => {
    const ws = new WebSocket(socketUrl());
    ws.onopen = () => { state.ws = ws; resolve(ws); };
    ws.onerror = () => reject(new Error("could not connect to the chat stream (is a token needed? use the Token button)"));
    ws.onclose = () => {
      state.ws = null; state.wsReady = null;
      for (const entry of state.pending.values()) finishBubble(entry, "connection closed", true);
      state.pending.clear();
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

function onFrame(frame) {
  const entry = state.pending.get(frame.id);
  if (frame.type === "accepted" && entry) {
    if (!state.sessionId) { state.sessionId = frame.session_id; }
  } else if (frame.type === "token" && entry) {
    entry.text += frame.content;
    entry.bubble.textContent = entry.text;
    entry.bubble.scrollIntoView({ block: "end" });
  } else if (frame.type === "done" && entry) {
    entry.bubble.textContent = frame.reply || entry.text;
    entry.bubble.append(el("span", { class: "meta" }, `${frame.phase || ""} · ${(frame.duration_ms / 1000).toFixed(1)} s`));
    finishBubble(entry);
    state.pending.delete(frame.id);
    state.sessionId = frame.session_id;
    loadSessions();
  } else if (frame.type === "error") {
    if (entry) { finishBubble(entry, frame.error, true); state.pending.delete(frame.id); }
    else toast(frame.error, true);
  }
}

async function sendMessage(text) {
  const id = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random();
  addBubble("user", text);
  const bubble = addBubble("assistant streaming", "");
  state.pending.set(id, { bubble, text: "" });
  try {
    const ws = await openSocket();
    const persona = $("#persona-select").value || undefined;
    ws.send(JSON.stringify({ type: "message", id, content: text, session_id: state.sessionId || undefined, persona }));
  } catch (err) {
    finishBubble(state.pending.get(id), err.message, true);
    state.pending.delete(id);
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
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("#chat-form").requestSubmit(); }
});
$("#new-chat").addEventListener("click", () => {
  state.sessionId = null;
  $("#messages").replaceChildren(el("div", { class: "welcome" }, "Welcome to Oxios. How can I help you?"));
  loadSessions();
});

async function loadSessions() {
  try {
    const page = await api("GET", "/api/sessions?limit=50");
    const list = $("#session-list");
    list.replaceChildren(...page.items.map((s) => {
      const del = el("button", { class: "del", title: "delete", type: "button" }, "×");
      del.addEventListener("click", guarded(async (ev) => {
        ev.stopPropagation();
        await api("DELETE", "/api/sessions/" + encodeURIComponent(s.id));
        if (state.sessionId === s.id) $("#new-chat").click(); else loadSessions();
      }));
      const li = el("li", { class: s.id === state.sessionId ? "active" : "", title: when(s.updated_at) },
        el("span", { class: "title" }, s.title || s.first_message || s.id.slice(0, 8)), del);
      li.addEventListener("click", guarded(() => openSession(s.id)));
      return li;
    }));
  } catch (err) { /* shown when the user acts */ }
}

async function openSession(id) {
  const detail = await api("GET", "/api/sessions/" + encodeURIComponent(id));
  state.sessionId = id;
  $("#messages").replaceChildren();
  for (const m of detail.messages) addBubble(m.role === "user" ? "user" : "assistant", m.content);
  loadSessions();
}

async function loadPersonas() {
  try {
    const [page, active] = await Promise.all([api("GET", "/api/personas?limit=100"), api("GET", "/api/personas/active").catch(() => null)]);
    const select = $("#persona-select");
    select.replaceChildren(el("option", { value: "" }, "default"),
      ...page.items.map((p) => el("option", { value: p.name }, p.name)));
    if (active) select.value = active.name;
  } catch (err) { /* personas may be unavailable */ }
}

$("#persona-select").addEventListener("change", guarded(async (ev) => {
  if (ev.target.value) await api("PUT", "/api/personas/active", { name: ev.target.value });
  toast("Persona: " + (ev.target.value || "default"));
}));

loaders.chat = async () => { await Promise.all([loadSessions(), loadPersonas()]); };

// -- agents -------------------------------------------------------------------------------

loaders.agents = async () => {
  const page = await api("GET", "/api/agents?limit=100");
  $("#agents-body").replaceChildren(...page.items.map((a) => {
    const live = a.status === "running" || a.status === "queued";
    const kill = el("button", { class: "danger", type: "button" }, "Kill");
    kill.disabled = !live;
    kill.addEventListener("click", guarded(async () => { await api("POST", `/api/agents/${encodeURIComponent(a.id)}/kill`); toast("Killed " + a.id.slice(0, 8)); loaders.agents(); }));
    return el("tr", {}, el("td", { class: "code", title: a.id }, a.id.slice(0, 8)), el("td", {}, pill(a.status)),
      el("td", { class: "wrap" }, a.goal || ""), el("td", {}, when(a.started || a.created)), el("td", {}, kill));
  }));
};

// -- cron ---------------------------------------------------------------------------------

loaders.cron = async () => {
  const page = await api("GET", "/api/cron-jobs?limit=200");
  $("#cron-body").replaceChildren(...page.items.map((j) => {
    const run = el("button", { type: "button" }, "Run now");
    run.addEventListener("click", guarded(async () => { await api("POST", `/api/cron-jobs/${encodeURIComponent(j.name)}/trigger`); toast("Triggered " + j.name); }));
    const del = el("button", { class: "danger", type: "button" }, "Delete");
    del.addEventListener("click", guarded(async () => { await api("DELETE", `/api/cron-jobs/${encodeURIComponent(j.name)}`); loaders.cron(); }));
    return el("tr", {}, el("td", {}, j.name), el("td", { class: "code" }, j.schedule), el("td", { class: "wrap" }, j.goal),
      el("td", {}, when(j.next_run_at)), el("td", { title: j.pause_reason || "" }, pill(j.enabled === false ? "disabled" : (j.paused ? "paused" : j.state || "scheduled"))),
      el("td", {}, run, " ", del));
  }));
};

$("#cron-form").addEventListener("submit", guarded(async (ev) => {
  ev.preventDefault();
  const data = Object.fromEntries(new FormData(ev.target));
  await api("POST", "/api/cron-jobs", data);
  ev.target.reset();
  toast("Added " + data.name);
  loaders.cron();
}));

// -- skills -------------------------------------------------------------------------------

loaders.skills = async () => {
  const page = await api("GET", "/api/skills?limit=500");
  $("#skills-body").replaceChildren(...page.items.map((s) => {
    const enabled = s.status !== "disabled";
    const toggle = el("button", { type: "button" }, enabled ? "Disable" : "Enable");
    toggle.addEventListener("click", guarded(async () => {
      await api("POST", `/api/skills/${encodeURIComponent(s.name)}/${enabled ? "disable" : "enable"}`);
      loaders.skills();
    }));
    const view = el("button", { type: "button" }, "SKILL.md");
    view.addEventListener("click", guarded(async () => {
      const c = await api("GET", `/api/skills/${encodeURIComponent(s.name)}/content`);
      const pre = $("#skill-content");
      pre.textContent = c.content;
      pre.classList.remove("hidden");
      pre.scrollIntoView();
    }));
    return el("tr", {}, el("td", {}, el("div", { class: "title" }, `${s.emoji || ""} ${s.name}`), el("div", { class: "hint" }, s.description || "")),
      el("td", {}, s.source || ""), el("td", {}, pill(s.status)), el("td", {}, view, " ", toggle));
  }));
};

// -- memory -------------------------------------------------------------------------------

function memoryCard(record, extra) {
  const del = el("button", { class: "danger", type: "button" }, "Forget");
  del.addEventListener("click", guarded(async () => { await api("DELETE", "/api/memory/" + encodeURIComponent(record.id)); loaders.memory(); }));
  return el("li", {}, el("div", { class: "title" }, record.name || record.type || "memory", " ", pill(record.tier)),
    el("div", { class: "body" }, record.content), el("div", { class: "hint" }, extra || record.category || ""), del);
}

loaders.memory = async () => {
  const page = await api("GET", "/api/memory?limit=50");
  $("#memory-list").replaceChildren(...page.items.map((r) => memoryCard(r)));
};

$("#memory-search").addEventListener("submit", guarded(async (ev) => {
  ev.preventDefault();
  const data = Object.fromEntries(new FormData(ev.target));
  const res = await api("GET", `/api/memory/search?q=${encodeURIComponent(data.q)}&mode=${data.mode}`);
  $("#memory-list").replaceChildren(...(res.hits.length ? res.hits.map((h) => memoryCard(h.record, `score ${h.score.toFixed(3)} · ${h.why || ""}`))
    : [el("li", { class: "hint" }, "No memories match.")]));
}));

$("#memory-form").addEventListener("submit", guarded(async (ev) => {
  ev.preventDefault();
  const data = Object.fromEntries(new FormData(ev.target));
  await api("POST", "/api/memory", data);
  ev.target.reset();
  toast("Saved");
  loaders.memory();
}));

// -- config -------------------------------------------------------------------------------

loaders.config = async () => {
  const config = await api("GET", "/api/config");
  state.config = config;
  $("#config-text").value = JSON.stringify(config, null, 2);
  $("#config-result").textContent = "";
};

function diff(before, after, out = {}) {
  for (const [k, v] of Object.entries(after)) {
    if (v && typeof v === "object" && !Array.isArray(v) && before && typeof before[k] === "object" && !Array.isArray(before[k])) {
      const sub = diff(before[k], v);
      if (Object.keys(sub).length) out[k] = sub;
    } else if (JSON.stringify(before ? before[k] : undefined) !== JSON.stringify(v)) out[k] = v;
  }
  return out;
}

$("#config-save").addEventListener("click", guarded(async () => {
  let edited;
  try { edited = JSON.parse($("#config-text").value); } catch (err) { throw new Error("not valid JSON: " + err.message); }
  const changes = diff(state.config, edited);
  if (!Object.keys(changes).length) { $("#config-result").textContent = "Nothing changed."; return; }
  const res = await api("PUT", "/api/config", changes);
  const parts = [`Saved ${res.changed.join(", ")}.`];
  if (res.applied.length) parts.push(`Applied now: ${res.applied.join(", ")}.`);
  if (res.restart_required.length) parts.push(`Needs a restart (oxios restart): ${res.restart_required.join(", ")}.`);
  $("#config-result").textContent = parts.join(" ");
  state.config = res.config;
}));

// -- audit --------------------------------------------------------------------------------

loaders.audit = async () => {
  const page = await api("GET", `/api/audit/entries?limit=50&page=${state.auditPage}`);
  $("#audit-body").replaceChildren(...page.items.map((e) => el("tr", {},
    el("td", {}, e.seq ?? ""), el("td", {}, when(e.timestamp || e.ts)), el("td", {}, e.actor || e.agent_name || ""),
    el("td", { class: "code" }, e.action), el("td", { class: "wrap code" }, e.resource || ""),
    el("td", {}, pill(e.allowed ? "ok" : "bad")), el("td", { class: "wrap" }, e.reason || ""))));
  const pages = Math.max(1, Math.ceil(page.total / page.limit));
  $("#audit-page").textContent = `page ${page.page} of ${pages} (${page.total} entries)`;
  $("#audit-prev").disabled = page.page <= 1;
  $("#audit-next").disabled = page.page >= pages;
};
$("#audit-prev").addEventListener("click", () => { state.auditPage = Math.max(1, state.auditPage - 1); guarded(loaders.audit)(); });
$("#audit-next").addEventListener("click", () => { state.auditPage += 1; guarded(loaders.audit)(); });
$("#audit-verify").addEventListener("click", guarded(async () => {
  const report = await api("GET", "/api/audit/verify");
  const box = $("#audit-status");
  box.textContent = report.valid ? `✔ chain intact (${report.entries} entries, ${report.checkpoints} checkpoints)` : `✘ chain broken at #${report.bad_seq} (${report.problem}): ${report.detail}`;
  box.style.color = report.valid ? "var(--accent)" : "var(--danger)";
}));

// -- approvals ----------------------------------------------------------------------------

loaders.approvals = async () => {
  const page = await api("GET", "/api/approvals?limit=100");
  const badge = $("#approvals-badge");
  badge.textContent = page.total;
  badge.classList.toggle("hidden", !page.total);
  $("#approvals-list").replaceChildren(...(page.items.length ? page.items.map((a) => {
    const decide = (verb) => guarded(async () => { await api("POST", `/api/approvals/${encodeURIComponent(a.id)}/${verb}`, {}); toast(`${verb}d`); loaders.approvals(); });
    return el("li", {}, el("div", { class: "title code" }, a.resource || a.subject || a.tool || a.kind || a.id),
      el("div", { class: "hint" }, `${a.kind || ""} ${a.tool ? "· " + a.tool : ""} · ${a.reason || "needs approval"} · agent ${a.agent_id || "?"} · ${when(a.created)}`),
      el("div", { class: "row" }, el("button", { class: "primary", type: "button", onclick: decide("approve") }, "Approve"),
        el("button", { class: "danger", type: "button", onclick: decide("reject") }, "Reject")));
  }) : [el("li", { class: "hint" }, "Nothing is waiting for you.")]));
};

// -- live events (SSE) --------------------------------------------------------------------

const LIVE_EVENTS = ["agent.started", "agent.progress", "agent.completed", "agent.created", "evaluation.result", "tool.started",
  "tool.finished", "tool.denied", "approval.requested", "approval.resolved", "cron.triggered", "cron.completed", "resync"];

function logEvent(name, data) {
  const log = $("#event-log");
  log.prepend(el("li", {}, `${new Date().toLocaleTimeString()}  ${name}  ${data.agent_id ? data.agent_id.slice(0, 8) : ""} ${data.tool || data.resource || data.what || data.job || ""}`));
  while (log.children.length > 100) log.lastChild.remove();
}

function currentView() { return (location.hash || "#chat").slice(1); }

function connectEvents() {
  if (state.events) state.events.close();
  const query = token() ? "?token=" + encodeURIComponent(token()) : "";
  const source = new EventSource("/api/events" + query);
  state.events = source;
  source.onopen = () => $("#live").classList.remove("off");
  source.onerror = () => $("#live").classList.add("off");
  const refreshSoon = (view) => {
    clearTimeout(refreshSoon[view]);
    refreshSoon[view] = setTimeout(() => { if (currentView() === view) guarded(loaders[view])(); }, 250);
  };
  for (const name of LIVE_EVENTS) {
    source.addEventListener(name, (ev) => {
      const data = JSON.parse(ev.data);
      logEvent(name, data);
      if (name.startsWith("agent.") || name === "resync") refreshSoon("agents");
      if (name.startsWith("approval.") || name === "resync") { refreshSoon("approvals"); guarded(loadApprovalBadge)(); }
      if (name === "approval.requested") toast("An agent asks for approval: " + (data.resource || data.what || ""));
      if (name.startsWith("cron.")) refreshSoon("cron");
    });
  }
}

async function loadApprovalBadge() {
  const page = await api("GET", "/api/approvals?limit=1");
  const badge = $("#approvals-badge");
  badge.textContent = page.total;
  badge.classList.toggle("hidden", !page.total);
}

$("#token-button").addEventListener("click", () => askToken());

// -- start --------------------------------------------------------------------------------

connectEvents();
show(currentView());
loadApprovalBadge().catch(() => {});
