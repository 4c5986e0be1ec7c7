// watcher dashboard: polls the JSON API and renders it. No framework, no build step.
// Log text is hostile: everything from the API is set with textContent, never innerHTML.
"use strict";

const API = "/error-monitor";
const POLL_MS = 5000;
const TOKEN_KEY = "watcher.token";
const SVG_NS = "http://www.w3.org/2000/svg";
const COLORS = {
  provider_error: "#2563eb", database_error: "#dc2626", rate_limit_error: "#d97706",
  timeout_error: "#7c3aed", auth_error: "#db2777", validation_error: "#0891b2",
  cache_error: "#65a30d", external_service_error: "#ea580c", internal_error: "#475569",
};
const FALLBACK_COLORS = ["#0f766e", "#9333ea", "#b45309", "#1d4ed8"];

const state = { window: "1h", selected: null, timer: null, generation: 0, patterns: [] };
const SEVERITY_RANK = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };

// --- small DOM helpers ---------------------------------------------------------------------------

function $(id) { return document.getElementById(id); }

// el("td", {className: "num"}, "text", child): strings become text nodes, never markup.
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  return node;
}

// Only http(s) URLs become links: a "javascript:" URL from a log or a fix must stay inert.
function safeLink(url, label) {
  if (typeof url !== "string" || !/^https?:\/\//i.test(url)) return null;
  return el("a", { href: url, rel: "noopener noreferrer", target: "_blank" }, label || url);
}

function ago(iso) {
  if (!iso) return "–";
  return agoSeconds(Math.max(0, (Date.now() - Date.parse(iso)) / 1000));
}

function agoSeconds(seconds) {
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

function timeCell(iso) {
  return el("td", { title: iso || "" }, ago(iso));
}

// Through the CSSOM: the CSP forbids inline style attributes.
function swatch(color) {
  const node = el("span", { className: "swatch" });
  node.style.backgroundColor = color;
  return node;
}

function colorFor(category, index) {
  return COLORS[category] || FALLBACK_COLORS[index % FALLBACK_COLORS.length];
}

// --- token: from the URL fragment (#token=…) or the input, kept in sessionStorage -----------------

function readFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    params.delete("token");
    // The token must not linger in the address bar or the history.
    history.replaceState(null, "", location.pathname + location.search + (params.toString() ? `#${params}` : ""));
  }
  state.selected = params.get("pattern");
}

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

class ApiFailure extends Error {
  constructor(status, body) {
    const detail = body && (body.detail ?? body.error);
    super(detail ? (typeof detail === "string" ? detail : JSON.stringify(detail)) : `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path, method = "GET") {
  const response = await fetch(API + path, { method, headers: authHeaders(), cache: "no-store" });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) throw new ApiFailure(response.status, body);
  return body;
}

function setStatus(text, kind) {
  const status = $("status");
  status.textContent = text;
  status.dataset.kind = kind || "ok";
}

// --- summary, sources -----------------------------------------------------------------------------

function renderSummary(dashboard) {
  const summary = dashboard.summary;
  $("sum-patterns").textContent = summary.total_patterns;
  $("sum-critical").textContent = summary.critical_errors;
  $("sum-fixable").textContent = summary.fixable_errors;
  $("sum-fixes").textContent = summary.generated_fixes;
  // what the fixes are, by status ("2 pr_open · 1 failed"): failed attempts are not fixes
  const statuses = Object.entries(summary.fixes_by_status || {}).sort(([a], [b]) => a.localeCompare(b));
  $("sum-fixes-detail").textContent = statuses.map(([status, n]) => `${n} ${status}`).join(" · ");
}

function renderTargets(source) {
  // the files a source reads now, with how far it has read each (like Promtail's targets page)
  const targets = source.targets || [];
  if (!targets.length) return null;
  const rows = targets.slice(0, 20).map((t) =>
    el("li", {}, `${t.path} @ ${t.offset === null ? "–" : t.offset}/${t.size === null ? "–" : t.size} bytes`));
  const more = targets.length > 20 ? [el("li", {}, `and ${targets.length - 20} more`)] : [];
  return el("details", { className: "targets" },
    el("summary", {}, `${targets.length} file${targets.length === 1 ? "" : "s"}`),
    el("ul", {}, ...rows, ...more));
}

function renderSources(body) {
  const items = body.sources.map((source) => {
    const lag = source.lag_seconds === null ? "" : ` · lag ${source.lag_seconds.toFixed(1)} s`;
    return el("li", { className: source.up ? "up" : "down" },
      el("span", { className: "dot", title: source.up ? "up" : "down" }),
      el("span", { className: "name" }, source.name),
      el("span", { className: "badge" }, source.up ? "up" : "down"),
      el("span", { className: "meta" }, `${source.lines} lines${lag}`),
      source.error ? el("span", { className: "error" }, source.error) : null,
      renderTargets(source));
  });
  $("sources").replaceChildren(...(items.length ? items : [el("li", {}, "No sources.")]));
}

// Every watcher on a shared state (PostgreSQL): shown only there; one on its own file has no fleet.
// Heartbeat ages are the server's (this browser's clock may be off; the fleet's are compared).
function renderFleet(body) {
  $("fleet-panel").hidden = !body.shared;
  if (!body.shared) return;
  $("fleet-count").textContent = `${body.up} of ${body.instances.length} up`;
  const items = body.instances.map((i) => {
    const up = i.state === "up";
    const leader = i.leader === true ? " · leader" : "";
    const here = i.name === body.instance ? " (this one)" : "";
    const reads = [...i.sources, ...i.leases.map((lease) => `${lease} (lease)`)];
    return el("li", { className: up ? "up" : "down" },
      el("span", { className: "dot", title: i.state }),
      el("span", { className: "name" }, i.name + here),
      el("span", { className: "badge" }, i.state),
      el("span", { className: "meta" },
        `${i.host} · pid ${i.pid} · v${i.version} · seen ${agoSeconds(i.last_seen_age_seconds)}${leader}`),
      el("span", { className: "reads" }, reads.length ? `reads ${reads.join(", ")}` : "reads nothing"));
  });
  $("fleet").replaceChildren(...items);
}

// --- the chart: one polyline per category, drawn as SVG --------------------------------------------

function renderChart(rates) {
  // Drawn at the container's pixel width so labels keep their size on a phone.
  const W = Math.max(280, Math.round($("chart").clientWidth || 640)), H = 220, L = 36, R = 8, T = 10, B = 24;
  const entries = Object.entries(rates.series).filter(([, counts]) => counts.some((n) => n > 0));
  const max = Math.max(1, ...entries.flatMap(([, counts]) => counts));
  const n = rates.buckets;
  const x = (i) => L + (n <= 1 ? 0 : (i * (W - L - R)) / (n - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Errors per category over time" });
  for (const v of [0, max / 2, max]) {
    chart.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    const label = svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" });
    label.textContent = Number.isInteger(v) ? v : v.toFixed(1);
    chart.append(label);
  }
  const span = rates.bucket_seconds * n;
  const ticks = [[0, `-${span >= 86400 ? "24 h" : `${span / 60} min`}`], [n - 1, "now"]];
  for (const [i, text] of ticks) {
    const label = svg("text", { x: x(i), y: H - 6, "text-anchor": i ? "end" : "start", class: "axis" });
    label.textContent = text;
    chart.append(label);
  }
  entries.forEach(([category, counts], index) => {
    const points = counts.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    const line = svg("polyline", { points, fill: "none", stroke: colorFor(category, index), "stroke-width": 2, class: "series" });
    line.dataset.category = category;
    const title = svg("title");
    title.textContent = `${category}: ${counts.reduce((a, b) => a + b, 0)} errors`;
    line.append(title);
    chart.append(line);
  });
  if (!entries.length) {
    const empty = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "axis" });
    empty.textContent = "No errors in this window";
    chart.append(empty);
  }
  $("chart").replaceChildren(chart);
  $("legend").replaceChildren(...entries.map(([category, counts], index) =>
    el("li", {}, swatch(colorFor(category, index)), `${category} (${counts.reduce((a, b) => a + b, 0)})`)));
}

// --- the patterns table ------------------------------------------------------------------------------

const COLUMNS = ["", "state", "count", "1 h", "trend", "severity", "category", "first", "last", "fixable", "fix"];
const TREND = { rising: "▲ rising", falling: "▼ falling", flat: "→ flat", new: "★ new" };

function fixCell(pattern) {
  const cell = el("td", { className: "fix" });
  if (pattern.fix_status) cell.append(el("span", { className: "badge" }, pattern.fix_status));
  const link = safeLink(pattern.pr_url, "PR");
  if (link) cell.append(" ", link);
  if (!cell.childNodes.length) cell.append("–");
  return cell;
}

function patternRow(pattern) {
  const title = pattern.error_type && !pattern.message.startsWith(pattern.error_type)
    ? `${pattern.error_type}: ${pattern.message}` : pattern.message;
  const link = el("a", { href: `#pattern=${encodeURIComponent(pattern.id)}`, className: "pattern-link" }, title);
  const last = pattern.window_counts["1h"];
  const row = el("tr", { className: pattern.id === state.selected ? "selected" : "" },
    el("td", { className: "pattern" }, link),
    el("td", {}, el("span", { className: `state ${pattern.state}` }, pattern.state)),
    el("td", { className: "num" }, pattern.count),
    el("td", { className: "num" }, last === undefined ? "–" : last),
    el("td", { className: `trend ${pattern.trend}` }, TREND[pattern.trend] || pattern.trend),
    el("td", {}, el("span", { className: `sev ${pattern.severity}` }, pattern.severity)),
    el("td", { className: "wide" }, pattern.category),
    Object.assign(timeCell(pattern.first_seen), { className: "wide" }),
    timeCell(pattern.last_seen),
    el("td", { className: "wide" }, pattern.fixable ? "yes" : "no"),
    fixCell(pattern));
  // On a phone each row becomes a card; the labels stand in for the hidden header.
  row.querySelectorAll("td").forEach((cell, i) => { cell.dataset.label = COLUMNS[i]; });
  return row;
}

// --- search and filters: over the patterns the API returned, as the user types -------------------

function fillOptions(select, values) {
  const chosen = select.value;
  const first = select.options[0];
  select.replaceChildren(first, ...values.map((v) => el("option", { value: v }, v)));
  select.value = values.includes(chosen) ? chosen : "";
}

function haystack(p) {
  const frames = [p.file, p.function].filter(Boolean).join(" ");
  return [p.id, p.message, p.template, p.error_type || "", p.category, frames,
    ...Object.keys(p.sources)].join(" ").toLowerCase();
}

function matches(p, f) {
  if (f.text && !haystack(p).includes(f.text)) return false;
  if (f.category && p.category !== f.category) return false;
  if (f.severity && SEVERITY_RANK[p.severity] < SEVERITY_RANK[f.severity]) return false;
  if (f.source && !(f.source in p.sources)) return false;
  if (f.state === "active") return p.state === "open" || p.state === "regressed";
  return !f.state || p.state === f.state;
}

function filters() {
  return {
    text: $("f-text").value.trim().toLowerCase(), category: $("f-category").value,
    severity: $("f-severity").value, source: $("f-source").value, state: $("f-state").value,
  };
}

function renderPatterns(body) {
  if (body) {
    state.patterns = body.patterns;
    const uniq = (xs) => [...new Set(xs)].sort();
    fillOptions($("f-category"), uniq(body.patterns.map((p) => p.category)));
    fillOptions($("f-source"), uniq(body.patterns.flatMap((p) => Object.keys(p.sources))));
  }
  const f = filters();
  const shown = state.patterns.filter((p) => matches(p, f));
  $("patterns").tBodies[0].replaceChildren(...shown.map(patternRow));
  $("patterns-empty").hidden = shown.length > 0;
  $("patterns-empty").textContent = state.patterns.length ? "No pattern matches the filters." : "No error patterns yet.";
  $("f-count").textContent = `${shown.length} of ${state.patterns.length}`;
}

// --- activity: who changed what, when --------------------------------------------------------------

const VERBS = { resolved: "resolved", ignored: "ignored", reopened: "reopened", regressed: "regressed",
  unignored: "no longer ignored", merged: "merged", split: "split", reclassified: "reclassified" };

function activityItem(a, withGroup) {
  const what = a.action === "merged" ? `merged ${a.detail.merged} in`
    : a.action === "split" ? `split ${a.detail.fingerprint} off` : VERBS[a.action] || a.action;
  const target = withGroup
    ? el("a", { href: `#pattern=${encodeURIComponent(a.group_id)}` }, a.group_id) : null;
  return el("li", {}, el("span", { className: "who", title: a.at || "" }, `${ago(a.at)} · ${a.actor} `),
    what, target ? " " : null, target,
    a.old_state !== a.new_state ? ` (${a.old_state} → ${a.new_state})` : "");
}

function renderActivity(body) {
  const items = body.activity.map((a) => activityItem(a, true));
  $("activity").replaceChildren(...(items.length ? items : [el("li", { className: "note" }, "No changes yet.")]));
}

// --- the detail view -----------------------------------------------------------------------------------

function fact(dl, name, value) {
  dl.append(el("dt", {}, name), value instanceof Node ? el("dd", {}, value) : el("dd", {}, value ?? "–"));
}

function renderAnalysis(pattern) {
  const box = $("detail-analysis");
  const analysis = pattern.analysis;
  if (!analysis) {
    box.replaceChildren(el("p", { className: "note" }, pattern.fixable
      ? "No analysis yet. Propose a fix to have the fix pipeline analyse this pattern."
      : "No analysis: this category is not auto-fixable."));
    return;
  }
  const confidence = analysis.confidence === null ? "–" : `${Math.round(analysis.confidence * 100)} %`;
  box.replaceChildren(
    analysis.summary ? el("p", {}, analysis.summary) : null,
    el("p", {}, el("strong", {}, "Root cause: "), analysis.root_cause || "–"),
    el("p", {}, `Confidence: ${confidence} · status: ${analysis.status}`),
    analysis.evidence.length ? el("ul", {}, ...analysis.evidence.map((e) => el("li", {}, e))) : null,
    analysis.risk ? el("p", {}, el("strong", {}, "Risk: "), analysis.risk) : null,
    safeLink(analysis.pr_url, `Pull request: ${analysis.pr_url}`));
}

function renderDetail(pattern) {
  $("detail").hidden = false;
  $("detail-title").textContent = pattern.error_type || "Pattern";
  $("detail-message").textContent = pattern.message;
  const facts = $("detail-facts");
  facts.replaceChildren();
  fact(facts, "Id", pattern.id);
  fact(facts, "Category", pattern.category);
  fact(facts, "Severity", pattern.severity);
  fact(facts, "Count", pattern.count);
  fact(facts, "Windows", Object.entries(pattern.window_counts).map(([k, v]) => `${k}: ${v}`).join(", ") || "–");
  fact(facts, "Trend", pattern.trend);
  fact(facts, "First seen", pattern.first_seen);
  fact(facts, "Last seen", pattern.last_seen);
  fact(facts, "Sources", Object.entries(pattern.sources).map(([k, v]) => `${k} (${v})`).join(", ") || "–");
  fact(facts, "State", pattern.state + (pattern.ignore_until ? ` until ${pattern.ignore_until}` : "")
    + (pattern.ignore_count ? ` until ${pattern.ignore_count} events` : ""));
  fact(facts, "Status", pattern.status);
  fact(facts, "Suggested fix", pattern.suggested_fix);
  fact(facts, "Pull request", safeLink(pattern.pr_url) || "–");
  $("detail-template").textContent = pattern.template;
  renderAnalysis(pattern);
  $("detail-fix").hidden = !pattern.fixable;
  $("detail-frames").replaceChildren(...pattern.frames.slice().reverse().map((f) => {
    const where = el("code", {}, f.line === null ? f.file : `${f.file}:${f.line}`);
    return el("li", { className: f.in_app ? "in-app" : "library" },
      safeLink(f.url, where) || where, " in ", el("code", {}, f.function || "?"));
  }));
  renderBreakdown(pattern);
  $("detail-activity").replaceChildren(...(pattern.activity.length
    ? pattern.activity.map((a) => activityItem(a, false)) : [el("li", { className: "note" }, "No changes yet.")]));
  const others = state.patterns.filter((p) => p.id !== pattern.id);
  $("act-merge-with").replaceChildren(...others.map((p) =>
    el("option", { value: p.id }, `${p.id} · ${p.message.slice(0, 60)}`)));
  $("act-merge").disabled = !others.length;
  if (!pattern.frames.length) $("detail-frames").append(el("li", { className: "note none" }, "No frames captured."));
  $("detail-samples").replaceChildren(...pattern.samples.map((s) => el("figure", { className: "sample" },
    el("figcaption", {}, `${s.timestamp || "–"} · ${s.source || "unknown source"}${s.line ? ` line ${s.line}` : ""}`),
    el("pre", { className: "text" }, s.text))));
}

function renderBreakdown(pattern) {
  const blocks = [["Source", pattern.sources], ["Host", pattern.tags.host], ["Pod", pattern.tags.pod],
    ["Release", pattern.tags.release]].filter(([, counts]) => counts && Object.keys(counts).length);
  $("detail-breakdown").replaceChildren(...blocks.map(([name, counts]) => el("div", { className: `by-${name.toLowerCase()}` },
    el("h4", {}, name),
    el("ul", {}, ...Object.entries(counts).sort((a, b) => b[1] - a[1]).slice(0, 10).map(([k, v]) =>
      el("li", {}, el("span", {}, k), el("span", { className: "num" }, v)))))));
}

async function act(action, query) {
  const result = $("act-result");
  result.textContent = "…";
  const params = new URLSearchParams(query || "");
  params.set("actor", "dashboard");
  try {
    const body = await api(`/errors/patterns/${encodeURIComponent(state.selected)}/${action}?${params}`, "POST");
    result.textContent = `${action}: now ${body.pattern.state}`;
    refresh();
  } catch (error) {
    result.textContent = `Refused (${error.status || "network"}): ${error.message}`;
    if (error.status === 401) $("token-form").hidden = false;
  }
}

async function refreshDetail() {
  if (!state.selected) { $("detail").hidden = true; return; }
  try {
    const body = await api(`/errors/patterns/${encodeURIComponent(state.selected)}`);
    renderDetail(body.pattern);
  } catch (error) {
    if (error.status !== 404) throw error;
    $("detail").hidden = true;
    setStatus(`Pattern ${state.selected} not found`, "warn");
  }
}

async function proposeFix() {
  const result = $("detail-fix-result");
  result.textContent = "…";
  try {
    const body = await api(`/fixes/generate-for-error?error_id=${encodeURIComponent(state.selected)}`, "POST");
    result.textContent = `${body.status}: ${body.message}`;
  } catch (error) {
    result.textContent = `Refused (${error.status || "network"}): ${error.message}`;
    if (error.status === 401) $("token-form").hidden = false;
  }
}

// --- polling -------------------------------------------------------------------------------------------

async function refresh() {
  clearTimeout(state.timer);
  // A refresh started while another is in flight supersedes it: one polling loop, ever.
  const generation = ++state.generation;
  try {
    const [dashboard, patterns, rates, sources, activity, fleet] = await Promise.all([
      api("/dashboard"), api("/errors/patterns?limit=500"), api(`/rates?window=${state.window}`), api("/sources"),
      api("/activity?limit=20"), api("/fleet"),
    ]);
    if (generation !== state.generation) return;
    renderSummary(dashboard);
    renderPatterns(patterns);
    renderActivity(activity);
    renderChart(rates);
    renderSources(sources);
    renderFleet(fleet);
    await refreshDetail();
    setStatus(`updated ${new Date().toLocaleTimeString()}`, "ok");
    $("token-form").hidden = true;
  } catch (error) {
    if (generation !== state.generation) return;
    if (error.status === 401 || error.status === 403) {
      $("token-form").hidden = false;
      setStatus(error.status === 401 ? "token needed" : error.message, "warn");
    } else {
      setStatus(`offline, retrying (${error.message})`, "error");
    }
  }
  if (generation === state.generation) state.timer = setTimeout(refresh, POLL_MS);
}

function onHashChange() {
  readFragment();
  $("detail-fix-result").textContent = "";
  $("act-result").textContent = "";
  refresh();
  if (state.selected) $("detail").scrollIntoView({ block: "start" });
}

function start() {
  readFragment();
  window.addEventListener("hashchange", onHashChange);
  $("detail-close").addEventListener("click", (event) => {
    event.preventDefault();
    history.replaceState(null, "", location.pathname + location.search);
    onHashChange();
  });
  $("detail-fix").addEventListener("click", proposeFix);
  $("act-resolve").addEventListener("click", () => act("resolve"));
  $("act-reopen").addEventListener("click", () => act("reopen"));
  $("act-ignore").addEventListener("click", () => act("ignore", $("act-ignore-for").value));
  $("act-merge").addEventListener("click", () => act("merge", `ids=${encodeURIComponent($("act-merge-with").value)}`));
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("filters").addEventListener("input", () => renderPatterns(null));
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token-input").value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    $("token-input").value = "";
    refresh();
  });
  for (const button of document.querySelectorAll("[data-window]")) {
    button.addEventListener("click", () => {
      state.window = button.dataset.window;
      for (const other of document.querySelectorAll("[data-window]")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      refresh();
    });
  }
  refresh();
}

document.addEventListener("DOMContentLoaded", start);
