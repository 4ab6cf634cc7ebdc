// callclock console: a single page over the console server's /api/ proxy
// (each call signed there with the operator's credentials) and its
// /console/ aggregates. Plain DOM, no framework, nothing fetched from
// elsewhere. Every piece of data reaches the page as text (textContent),
// never as HTML.
"use strict";

const view = document.getElementById("view");
const banner = document.getElementById("banner");
let refreshTimer = null;
let renderSeq = 0;

// ---- calls -------------------------------------------------------------

// call makes one request to the console server; it resolves to the JSON
// answer and rejects with the API's error message (and hint).
async function call(method, path, body) {
  const opts = { method, headers: { "X-Callclock-Console": "1" } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = body;
  }
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    throw new Error("the console server does not answer: is bootstrap console still running?");
  }
  const text = await resp.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = null; }
  if (!resp.ok) {
    const err = doc && doc.error ? doc.error : { message: text || resp.statusText };
    const e = new Error(err.message + (doc && doc.hint ? " — " + doc.hint : ""));
    e.status = resp.status;
    throw e;
  }
  return doc;
}

const enc = encodeURIComponent;

// ---- DOM helpers -------------------------------------------------------

// h builds an element: attributes (on* as listeners, class, data-*), and
// children as nodes or text.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function flash(kind, text) {
  banner.className = "banner " + kind;
  banner.textContent = text;
  banner.hidden = false;
  clearTimeout(flash.t);
  if (kind === "ok") flash.t = setTimeout(() => { banner.hidden = true; }, 6000);
}

function clearFlash() { banner.hidden = true; }

// ---- formatting --------------------------------------------------------

// absolute is an instant as "2026-12-01 16:05:00Z".
function absolute(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

// relative is an instant from now: "in 3 min", "2 h ago".
function relative(iso) {
  if (!iso) return "";
  const secs = (new Date(iso) - Date.now()) / 1000;
  const a = Math.abs(secs);
  let n;
  if (a < 45) return secs >= 0 ? "in a few seconds" : "just now";
  if (a < 5400) n = Math.round(a / 60) + " min";
  else if (a < 129600) n = Math.round(a / 3600) + " h";
  else n = Math.round(a / 86400) + " d";
  return secs >= 0 ? "in " + n : n + " ago";
}

function when(iso) {
  if (!iso) return h("span", { class: "muted" }, "–");
  return h("span", { class: "when", title: iso }, h("b", {}, relative(iso)), h("span", { class: "sep" }, " · "), absolute(iso));
}

// duration is milliseconds for people: "42 ms", "1.3 s", "2 min 5 s".
function duration(ms) {
  if (ms === undefined || ms === null || isNaN(ms)) return "–";
  const a = Math.abs(ms);
  if (a < 1000) return Math.round(ms) + " ms";
  if (a < 60000) return (ms / 1000).toFixed(1) + " s";
  return Math.floor(ms / 60000) + " min " + Math.round((a % 60000) / 1000) + " s";
}

function badge(text, kind) {
  return h("span", { class: "badge " + (kind || text) }, text);
}

function outcomeCell(lf) {
  if (!lf) return h("span", { class: "muted" }, "never fired");
  const parts = [badge(lf.outcome)];
  if (lf.status) parts.push(h("span", { class: "muted" }, " " + lf.status));
  if (lf.manual) parts.push(h("span", { class: "tag" }, "manual"));
  parts.push(h("div", { class: "sub" }, relative(lf.attemptedAt)));
  return h("div", {}, parts);
}

function timerLink(id) { return h("a", { href: "#/timers/" + enc(id), class: "mono" }, id); }
function groupLink(g) { return g ? h("a", { href: "#/groups/" + enc(g) }, g) : h("span", { class: "muted" }, "–"); }

// ---- routing -----------------------------------------------------------

async function render() {
  clearTimeout(refreshTimer);
  const seq = ++renderSeq;
  const hash = location.hash.replace(/^#/, "") || "/";
  const parts = hash.split("/").filter(Boolean).map(decodeURIComponent);
  view.replaceChildren();
  if (banner.classList.contains("error")) clearFlash();
  if (parts[0] === "timers" && parts[1]) return timerView(parts[1], seq);
  if (parts[0] === "groups" && parts[1]) return groupView(parts[1], seq);
  return timersView(seq);
}

// every re-runs fn every ms while the view it belongs to is shown.
function every(seq, ms, fn) {
  const tick = async () => {
    if (seq !== renderSeq) return;
    try { await fn(); } catch (e) { flash("error", e.message); }
    if (seq === renderSeq) refreshTimer = setTimeout(tick, ms);
  };
  refreshTimer = setTimeout(tick, ms);
}

// ---- the timers view (landing) ------------------------------------------

const filters = { group: "", state: "", prefix: "" };

async function timersView(seq) {
  const failures = h("section", { class: "card", id: "failures" }, h("h2", {}, "Needs attention"), h("p", { class: "muted" }, "Loading…"));
  const tableBox = h("div", { id: "timers-box" }, h("p", { class: "muted" }, "Loading…"));
  const footer = h("p", { class: "footnote", id: "timers-footer" });
  const load = async () => {
    const q = new URLSearchParams(filters).toString();
    const doc = await call("GET", "/console/timers?" + q);
    if (seq !== renderSeq) return;
    failures.replaceChildren(h("h2", {}, "Needs attention", h("span", { class: "count" }, String(doc.failures.length))), failureList(doc.failures));
    tableBox.replaceChildren(timersTable(doc.timers, "No timers match these filters."));
    footer.textContent = doc.timers.length + " timer(s)" + (doc.truncated ? " (the first ones only)" : "") +
      " · " + doc.apiCalls + " API calls: one list page per 500 timers, then one GET per timer for its last outcome";
  };
  const bar = filterBar(() => load().catch((e) => flash("error", e.message)));
  view.append(failures,
    h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", {}, "Timers"), bar), tableBox, footer),
    putForm(() => load()));
  try { await load(); } catch (e) { flash("error", e.message); tableBox.replaceChildren(h("p", { class: "error" }, e.message)); }
  every(seq, 10000, load);
}

function filterBar(onChange) {
  let t;
  const changed = (key) => (ev) => {
    filters[key] = ev.target.value.trim();
    clearTimeout(t);
    t = setTimeout(onChange, 250);
  };
  const state = h("select", { id: "filter-state", onchange: changed("state"), "aria-label": "state" },
    ["", "active", "paused", "completed"].map((v) => h("option", { value: v }, v || "any state")));
  state.value = filters.state;
  return h("div", { class: "filters" },
    h("input", { id: "filter-prefix", placeholder: "ID prefix", value: filters.prefix, oninput: changed("prefix"), "aria-label": "ID prefix" }),
    h("input", { id: "filter-group", placeholder: "group", value: filters.group, oninput: changed("group"), "aria-label": "group" }),
    state);
}

function failureList(list) {
  if (!list.length) return h("p", { class: "all-clear" }, "✓ Nothing failed or was missed in the last 7 days.");
  return h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Timer"), h("th", {}, "Group"), h("th", {}, "What"), h("th", {}, "Detail"))),
    h("tbody", {}, list.map((f) => h("tr", { "data-failure": f.timerId },
      h("td", {}, when(f.at)), h("td", {}, timerLink(f.timerId)), h("td", {}, groupLink(f.group)),
      h("td", {}, badge(f.kind === "failed" ? "failed" : f.kind, f.kind)), h("td", { class: "detail" }, f.detail)))));
}

function stateCell(t) {
  const b = badge(t.state);
  return t.pauseReason ? h("span", {}, b, h("div", { class: "sub" }, t.pauseReason)) : b;
}

function timersTable(timers, empty) {
  if (!timers.length) return h("p", { class: "muted empty", id: "timers-empty" }, empty);
  return h("table", { class: "grid", id: "timers-table" },
    h("thead", {}, h("tr", {}, ["ID", "Group", "Schedule", "State", "Next fire", "Last outcome"].map((c) => h("th", {}, c)))),
    h("tbody", {}, timers.map((t) => h("tr", { "data-id": t.id },
      h("td", {}, timerLink(t.id)),
      h("td", {}, groupLink(t.group)),
      h("td", { class: "schedule", title: t.schedule || "" }, t.scheduleWords || t.schedule || "–"),
      h("td", {}, stateCell(t)),
      h("td", {}, when(t.nextFireAt)),
      h("td", {}, outcomeCell(t.lastFire))))));
}

const putExample = JSON.stringify({
  group: "reports", schedule: "cron(0 9 ? * MON-FRI *)", timezone: "America/New_York",
  http: { method: "POST", url: "https://example.com/hooks/report" },
}, null, 2);

// putForm creates or replaces a timer: its ID and the PUT body, sent as
// written so that the API validates it and its 400 message is shown.
function putForm(onDone) {
  const id = h("input", { id: "put-id", placeholder: "timer ID, e.g. daily-report", required: true, autocomplete: "off" });
  const body = h("textarea", { id: "put-body", rows: 8, spellcheck: "false" });
  body.value = putExample;
  const err = h("p", { class: "error", id: "put-error", hidden: true });
  const submit = h("button", { id: "put-submit", class: "primary", type: "button" }, "Create or replace");
  submit.addEventListener("click", async () => {
    err.hidden = true;
    if (!id.value.trim()) { err.textContent = "The timer needs an ID."; err.hidden = false; return; }
    submit.disabled = true;
    try {
      const t = await call("PUT", "/api/periodic/" + enc(id.value.trim()), body.value);
      flash("ok", (t.version === 1 ? "Created " : "Replaced ") + t.id + " (version " + t.version + ")");
      await onDone();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  return h("details", { class: "card", id: "put-form" },
    h("summary", {}, h("h2", {}, "Create or replace a timer")),
    h("p", { class: "muted" }, "The body of PUT /periodic/{id}, as JSON: a schedule (cron, rate, at, or minuteOfHour), a timezone, and an http target or timerCallbackData."),
    h("label", {}, "ID", id), h("label", {}, "Timer", body), err, h("div", { class: "actions" }, submit));
}

// ---- one timer -----------------------------------------------------------

async function timerView(id, seq) {
  const box = h("div", { id: "timer-view" }, h("p", { class: "muted" }, "Loading…"));
  view.append(h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Timers"), " / ", h("span", { class: "mono" }, id)), box);
  const load = async () => {
    const doc = await call("GET", "/console/timer?id=" + enc(id));
    if (seq !== renderSeq) return;
    box.replaceChildren(timerHead(doc.timer, load), upcomingCard(doc.upcoming), historyCard(doc.history.history || []),
      h("section", { class: "card" }, h("h2", {}, "Document"), h("pre", { class: "doc", id: "timer-doc" }, JSON.stringify(doc.document, null, 2))));
  };
  try { await load(); } catch (e) {
    box.replaceChildren(h("p", { class: "error", id: "timer-error" }, e.message));
    return;
  }
  every(seq, 3000, load);
}

function timerHead(t, reload) {
  const act = (label, idName, fn, cls) => h("button", { id: idName, class: cls || "", type: "button", onclick: async (ev) => {
    ev.target.disabled = true;
    try { await fn(); await reload(); } catch (e) { flash("error", e.message); } finally { ev.target.disabled = false; }
  } }, label);
  const paused = t.state === "paused";
  const buttons = [
    paused ? act("Resume", "btn-resume", async () => { await call("POST", "/api/periodic/" + enc(t.id) + "/resume"); flash("ok", "Resumed " + t.id); })
      : act("Pause", "btn-pause", async () => { await call("POST", "/api/periodic/" + enc(t.id) + "/pause", JSON.stringify({ reason: "paused from the console" })); flash("ok", "Paused " + t.id); }),
    act("Fire now", "btn-fire", async () => {
      const f = await call("POST", "/api/periodic/" + enc(t.id) + "/fire");
      flash("ok", "Fired " + t.id + ": occurrence " + absolute(f.scheduledAt) + " queued");
    }),
    h("button", { id: "btn-delete", class: "danger", type: "button", onclick: () => confirmDelete(t.id) }, "Delete"),
  ];
  const target = t.http ? (t.http.method || "GET") + " " + t.http.url : "callback message (timerCallbackData)";
  return h("section", { class: "card head" },
    h("div", { class: "card-head" },
      h("div", {}, h("h1", { class: "mono" }, t.id), h("p", { class: "schedule-words", id: "timer-words" }, t.scheduleWords)),
      h("div", { class: "actions" }, buttons)),
    h("dl", { class: "facts" },
      fact("State", h("span", { id: "timer-state" }, stateCell(t))),
      fact("Next fire", when(t.nextFireAt)),
      fact("Last outcome", outcomeCell(t.lastFire)),
      fact("Group", groupLink(t.group)),
      fact("Expression", h("span", { class: "mono" }, t.schedule || ("minuteOfHour " + t.minuteOfHour))),
      fact("Target", h("span", { class: "mono" }, target)),
      fact("Missed", t.missedCount ? t.missedCount + " · last " + relative(t.lastMissedAt) : "none"),
      fact("Version", String(t.version))));
}

function fact(k, v) { return h("div", {}, h("dt", {}, k), h("dd", {}, v)); }

function confirmDelete(id) {
  const dlg = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = "Delete timer " + id + "?";
  document.getElementById("confirm-text").textContent = "It stops firing, and its history goes with it. This cannot be undone.";
  const ok = document.getElementById("confirm-ok");
  const cancel = document.getElementById("confirm-cancel");
  const close = () => { dlg.close(); ok.onclick = cancel.onclick = null; };
  cancel.onclick = close;
  ok.onclick = async () => {
    close();
    try {
      await call("DELETE", "/api/periodic/" + enc(id));
      flash("ok", "Deleted " + id);
      location.hash = "#/";
    } catch (e) { flash("error", e.message); }
  };
  dlg.showModal();
}

// upcomingCard is the next occurrences on a timeline and as a list.
function upcomingCard(up) {
  const list = up.upcoming || [];
  const card = h("section", { class: "card", id: "upcoming" }, h("h2", {}, "Upcoming", h("span", { class: "count" }, String(list.length)), h("span", { class: "zone" }, "zone " + up.timezone)));
  if (!list.length) {
    card.append(h("p", { class: "muted", id: "upcoming-none" }, up.paused ? "None: the timer is paused." : "None: the timer will not fire again."));
    return card;
  }
  card.append(timeline(list), h("ol", { class: "occurrences", id: "upcoming-list" }, list.map((o) => h("li", {},
    h("span", { class: "rel" }, relative(o.scheduledAt)), h("span", { class: "mono" }, absolute(o.scheduledAt)),
    h("span", { class: "local" }, o.local.replace("T", " ")), o.offsetChanged ? h("span", { class: "tag dst" }, "offset changed") : null))));
  return card;
}

// timeline draws the occurrences on a line from now to the last of them.
function timeline(list) {
  const W = 900, H = 70, L = 30, R = 30;
  const now = Date.now();
  const last = new Date(list[list.length - 1].scheduledAt).getTime();
  const span = Math.max(last - now, 1);
  const x = (t) => L + (W - L - R) * Math.min(Math.max((t - now) / span, 0), 1);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "timeline", role: "img", "aria-label": "upcoming occurrences" },
    s("line", { x1: L, y1: 30, x2: W - R, y2: 30, class: "axis" }),
    s("circle", { cx: L, cy: 30, r: 4, class: "now" }),
    s("text", { x: L, y: 58, class: "label", "text-anchor": "middle" }, "now"));
  list.forEach((o, i) => {
    const t = new Date(o.scheduledAt).getTime();
    const dot = s("circle", { cx: x(t), cy: 30, r: 6, class: o.offsetChanged ? "occ dst" : "occ" }, s("title", {}, absolute(o.scheduledAt) + " (" + o.local + ")"));
    svg.append(dot);
    if (i === 0 || i === list.length - 1) {
      svg.append(s("text", { x: x(t), y: 16, class: "label", "text-anchor": i === 0 && list.length > 1 ? "middle" : "end" }, relative(o.scheduledAt)));
    }
  });
  return svg;
}

// historyCard is the outcomes, newest first, and a lateness chart.
function historyCard(hist) {
  const card = h("section", { class: "card", id: "history" }, h("h2", {}, "History", h("span", { class: "count" }, String(hist.length))));
  if (!hist.length) {
    card.append(h("p", { class: "muted", id: "history-none" }, "No delivery yet."));
    return card;
  }
  card.append(latenessChart(hist), h("table", { class: "grid", id: "history-table" },
    h("thead", {}, h("tr", {}, ["Scheduled", "Outcome", "Status", "Attempt", "Lateness", "Latency", "Error"].map((c) => h("th", {}, c)))),
    h("tbody", {}, hist.map((e) => h("tr", {},
      h("td", {}, when(e.scheduledAt)),
      h("td", {}, badge(e.outcome), e.manual ? h("span", { class: "tag" }, "manual") : null, e.replay ? h("span", { class: "tag" }, "replay") : null),
      h("td", {}, e.status ? String(e.status) : "–"),
      h("td", {}, String(e.attempt || "–")),
      h("td", {}, e.attemptedAt ? duration(new Date(e.attemptedAt) - new Date(e.scheduledAt)) : "–"),
      h("td", {}, e.outcome === "missed" ? "–" : duration(e.latencyMs)),
      h("td", { class: "detail" }, e.error || ""))))));
  return card;
}

// latenessChart draws each attempt's lateness (attemptedAt − scheduledAt)
// as a bar, oldest on the left, coloured by outcome.
function latenessChart(hist) {
  const pts = hist.filter((e) => e.attemptedAt).slice().reverse();
  const W = 900, H = 120, L = 56, B = 20, T = 10;
  const late = pts.map((e) => Math.max(0, new Date(e.attemptedAt) - new Date(e.scheduledAt)));
  const max = niceCeil(Math.max(100, ...late));
  const bw = Math.min(40, (W - L - 10) / Math.max(pts.length, 1));
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": "lateness of each attempt" },
    s("line", { x1: L, y1: H - B, x2: W - 5, y2: H - B, class: "axis" }),
    s("line", { x1: L, y1: T, x2: W - 5, y2: T, class: "grid-line" }),
    s("text", { x: L - 6, y: T + 4, class: "label", "text-anchor": "end" }, duration(max)),
    s("text", { x: L - 6, y: H - B + 4, class: "label", "text-anchor": "end" }, "0"),
    s("text", { x: L, y: H - 4, class: "label" }, "lateness of each attempt, oldest first"));
  pts.forEach((e, i) => {
    const bh = Math.max(2, (H - B - T) * late[i] / max);
    svg.append(s("rect", { x: L + 4 + i * bw, y: H - B - bh, width: Math.max(bw - 4, 2), height: bh, rx: 2, class: "bar " + e.outcome },
      s("title", {}, absolute(e.scheduledAt) + ": " + e.outcome + ", " + duration(late[i]) + " late")));
  });
  return svg;
}

// niceCeil rounds ms up to 1, 2 or 5 times a power of ten, for an axis.
function niceCeil(ms) {
  const p = Math.pow(10, Math.floor(Math.log10(ms)));
  for (const m of [1, 2, 5, 10]) if (m * p >= ms) return m * p;
  return 10 * p;
}

// ---- a group -------------------------------------------------------------

async function groupView(g, seq) {
  const box = h("div", { id: "group-box" }, h("p", { class: "muted" }, "Loading…"));
  const reason = h("input", { id: "group-reason", placeholder: "reason, e.g. deploy 1.4.2" });
  const act = (action) => h("button", { id: "group-" + action, type: "button", class: action === "pause" ? "" : "primary", onclick: async (ev) => {
    ev.target.disabled = true;
    try {
      const body = action === "pause" && reason.value.trim() ? JSON.stringify({ reason: reason.value.trim() }) : undefined;
      const r = await call("POST", "/api/groups/" + enc(g) + "/" + action, body);
      flash("ok", (action === "pause" ? "Paused " : "Resumed ") + r.changed + " timer(s) of group " + g);
      await load();
    } catch (e) { flash("error", e.message); } finally { ev.target.disabled = false; }
  } }, action === "pause" ? "Pause group" : "Resume group");
  const load = async () => {
    const doc = await call("GET", "/console/timers?group=" + enc(g));
    if (seq !== renderSeq) return;
    const paused = doc.timers.filter((t) => t.state === "paused").length;
    box.replaceChildren(h("p", { class: "muted" }, doc.timers.length + " timer(s), " + paused + " paused"), timersTable(doc.timers, "This group has no timers."));
  };
  view.append(h("p", { class: "crumbs" }, h("a", { href: "#/" }, "Timers"), " / group"),
    h("section", { class: "card" }, h("div", { class: "card-head" }, h("h1", {}, "Group ", h("span", { class: "mono" }, g)),
      h("div", { class: "actions" }, reason, act("pause"), act("resume"))), box));
  try { await load(); } catch (e) { box.replaceChildren(h("p", { class: "error" }, e.message)); return; }
  every(seq, 10000, load);
}

// ---- start -----------------------------------------------------------------

window.addEventListener("hashchange", () => { render(); });
call("GET", "/console/info").then((i) => { document.getElementById("endpoint").textContent = "API " + i.endpoint; }).catch(() => {});
render();
