// The status page: reads the node's JSON endpoints every few seconds and renders them. Everything peers
// announce (labels, model names, query texts) is untrusted: it only ever becomes text nodes, never markup.
"use strict";

const RefreshMs = 5000;
const state = { self: null, modelsOffered: "" };

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "title") node.title = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const short = id => (id && id.length > 14 ? id.slice(0, 6) + "…" + id.slice(-6) : id || "");
const peerCell = id => el("span", { class: "mono", title: id }, short(id), id === state.self ? el("span", { class: "badge" }, "this node") : null);
const num = (value, digits = 0) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));
const numCell = (value, digits) => el("td", { class: "num" }, num(value, digits));

function ago(iso) {
  if (!iso) return "–";
  const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 0) return "in " + duration(-seconds);
  return duration(seconds) + " ago";
}

function duration(seconds) {
  if (seconds < 90) return seconds + " s";
  if (seconds < 5400) return Math.round(seconds / 60) + " min";
  return Math.round(seconds / 3600) + " h";
}

function untilText(iso) {
  const seconds = Math.round((Date.parse(iso) - Date.now()) / 1000);
  return seconds <= 0 ? "lapsed" : "in " + duration(seconds);
}

// A model's version is the Unix time in ms it was saved at (a publisher picks it: one out of a date's range shows as the number).
const savedAt = version => Math.abs(version) <= 8.64e15 ? new Date(version).toISOString().slice(0, 16).replace("T", " ") + " UTC" : "version " + version;

function fill(tbody, rows, empty, columns) {
  tbody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: columns, class: "muted" }, empty))]));
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(path + ": " + (body.error || response.status));
  return body;
}

function renderStatus(status) {
  state.self = status.peerId;
  document.getElementById("self").textContent = short(status.peerId);
  document.getElementById("self").title = status.peerId;
  const ready = el("span", { class: "badge " + (status.ready ? "ok" : "bad") }, status.ready ? "ready" : "starting");
  document.getElementById("summary").replaceChildren(ready, ` v${status.version} · ${reachText(status)}${status.clientMode ? " (client mode)" : ""} · up ${duration(Math.round(status.uptimeSeconds))} · hosts ${status.experts.length} experts`);
  document.getElementById("dht-summary").replaceChildren(
    el("dt", {}, "routing table"), el("dd", {}, `${status.routingTableSize} contacts`),
    el("dt", {}, "records held"), el("dd", {}, String(status.dhtRecords)));
  renderHosted(status.experts);
  renderAudits(status.audits);
}

function renderAudits(audits) {
  document.getElementById("audit-summary").textContent =
    `Audits compared ${audits.compared} answers of replicas that announce the same weights; ${audits.disputed} pairs disagreed with no third to decide. A flagged host answered unlike the others and is no longer called.`;
  fill(document.querySelector("#flagged tbody"), audits.flagged.map(f => el("tr", {},
    el("td", {}, peerCell(f.peerId)), el("td", {}, f.reason), el("td", {}, ago(f.at)))), "No host flagged.", 3);
}

function weightsSource(w) {
  if (w.source === "adopted") return el("span", {}, "adopted from ", peerCell(w.from), ` at ${w.atUpdate}`);
  if (w.source === "averaged") return el("span", {}, "averaged, led by ", peerCell(w.from), ` at ${w.atUpdate}`);
  return "its seed";
}

function renderHosted(experts) {
  const rows = experts.map(e => el("tr", { "data-uid": e.uid },
    el("td", { class: "mono" }, e.uid), numCell(e.weights.version), el("td", {}, weightsSource(e.weights)), numCell(e.weights.trainedHere),
    el("td", { class: "mono", title: e.weights.snapshot || "" }, e.weights.snapshot ? e.weights.snapshot.slice(0, 12) : "–"),
    numCell(e.queueDepth), numCell(e.latencyP50Ms, 2)));
  fill(document.querySelector("#hosted tbody"), rows, "This node hosts no expert.", 7);
  document.getElementById("hosted-count").textContent = `(${experts.length})`;
}

function renderExperts(listing) {
  const rows = [];
  for (const expert of listing.experts) {
    const hosts = expert.hosts.length ? expert.hosts : [null];
    hosts.forEach((h, i) => rows.push(el("tr", { "data-uid": expert.uid, "data-host": h ? h.peer_id : "" },
      el("td", { class: "mono" }, i === 0 ? expert.uid : ""),
      el("td", {}, h ? peerCell(h.peer_id) : el("span", { class: "badge bad" }, "no live host")),
      el("td", {}, h ? h.type : ""), el("td", { class: "origin" }, h && h.domain || ""), el("td", { class: "origin" }, h && h.contributor || ""),
      numCell(h && h.updates), numCell(h && h.queue_depth), numCell(h && h.latency_p50_ms, 2), numCell(h && h.rows_last_minute),
      el("td", {}, h ? ago(h.announced_at) : ""), el("td", {}, h ? untilText(h.expires_at) : ""))));
  }
  fill(document.querySelector("#experts tbody"), rows, listing.grids.length
    ? "No live expert in the grids walked."
    : "No grid to walk: this node hosts no expert and holds no model. /v1/experts?grid=NAME lists one.", 11);
  // Domain and contributor columns only when some expert was contributed.
  const contributed = listing.experts.some(e => e.hosts.some(h => h.domain || h.contributor));
  document.querySelector("#experts table").classList.toggle("no-origin", !contributed);
  document.getElementById("expert-count").textContent = `(${listing.experts.length})`;
  document.getElementById("grids").textContent = listing.grids.length
    ? "Grids walked in the DHT: " + listing.grids.map(g => `${g.prefix}* ${g.found} experts${g.truncated ? " (more not listed)" : ""}`).join(", ")
    : "";
  renderHeatmaps(listing);
}

// Whether peers can dial this node (dial-back), and through which relay they reach it when not.
function reachText(status) {
  const r = status.reachability;
  if (r && r.state === "unreachable")
    return r.relays.length > 0 ? `NOT reachable at ${r.address}: peers reach it through the relay ${r.relays.join(", ")}` : `NOT reachable at ${r.address}, and no relay yet: nobody can call its experts`;
  const relaying = r && r.relaying && r.relaying.reservations > 0 ? ` · relays for ${r.relaying.reservations} peers behind NATs` : "";
  if (r && r.state === "reachable") return `peers reach it at ${status.announceAddresses.join(", ")} (dialled back)${relaying}`;
  return `peers reach it at ${status.listenAddress}${relaying}`;
}

// At most this many rows and columns of a grid are drawn (what a host announces could make a grid of any size).
const MaxHeatmapSide = 64;

function renderHeatmaps(listing) {
  const byGrid = new Map();
  for (const expert of listing.experts) {
    const parts = expert.uid.split(".");
    const grid = parts[0];
    const coordinates = parts.slice(1);
    const rows = expert.hosts.reduce((sum, h) => sum + h.rows_last_minute, 0);
    if (!byGrid.has(grid)) byGrid.set(grid, []);
    // Rows by the first coordinate, columns by the rest ("" for a uid of one coordinate).
    byGrid.get(grid).push({ expert, rows, row: coordinates[0] ?? "", column: coordinates.slice(1).join(".") });
  }
  const numeric = (a, b) => a.localeCompare(b, undefined, { numeric: true });
  const maps = [];
  for (const [grid, cells] of byGrid) {
    const allRows = [...new Set(cells.map(c => c.row))].sort(numeric);
    const allColumns = [...new Set(cells.map(c => c.column))].sort(numeric);
    const rowKeys = allRows.slice(0, MaxHeatmapSide), columns = allColumns.slice(0, MaxHeatmapSide);
    const busiest = Math.max(1, ...cells.map(c => c.rows));
    const at = new Map(cells.map(c => [c.row + "/" + c.column, c]));
    const header = el("tr", {}, el("th", {}, grid), columns.map(c => el("th", {}, c)));
    const body = rowKeys.map(row => el("tr", {}, el("th", {}, row), columns.map(column => {
      const cell = at.get(row + "/" + column);
      if (!cell || cell.expert.hosts.length === 0) return el("td", { class: "empty", title: cell ? cell.expert.uid + ": no live host" : "no expert" }, "—");
      const { expert, rows } = cell;
      // Square root: one busy expert does not wash out the differences among the others.
      const share = Math.sqrt(rows / busiest);
      const td = el("td", { "data-uid": expert.uid, title: `${expert.uid}: ${rows} rows over the last minute on ${expert.hosts.length} host(s)` },
        expert.hosts.length > 1 ? `×${expert.hosts.length}` : "");
      td.style.background = `rgba(36, 86, 199, ${0.08 + 0.85 * share})`;
      td.style.color = share > 0.5 ? "#fff" : "inherit";
      return td;
    })));
    const cut = allRows.length > rowKeys.length || allColumns.length > columns.length;
    maps.push(el("div", { class: "scroll" }, el("table", { class: "heatmap" }, el("thead", {}, header), el("tbody", {}, body)),
      cut ? el("p", { class: "muted" }, `The first ${rowKeys.length} of ${allRows.length} rows and ${columns.length} of ${allColumns.length} columns.`) : null));
  }
  document.getElementById("heatmaps").replaceChildren(...(maps.length ? maps : [el("p", { class: "muted" }, "No grid to show.")]));
}

function renderPeers(view) {
  fill(document.querySelector("#peers tbody"), view.peers.map(p => el("tr", { "data-peer": p.peer_id },
    el("td", {}, peerCell(p.peer_id)), el("td", { class: "mono" }, p.address), numCell(p.bucket),
    el("td", {}, p.backed_off ? el("span", { class: "badge bad" }, "backed off") : p.call_p95_ms === null ? "–" : `p95 ${num(p.call_p95_ms, 1)} ms`))),
  "No peer yet.", 4);
  document.getElementById("peer-count").textContent = `(${view.peers.length})`;
  fill(document.querySelector("#buckets tbody"), view.buckets.map(b => el("tr", {}, numCell(b.depth), numCell(b.contacts), numCell(b.replacements))), "No bucket.", 3);
  fill(document.querySelector("#banned tbody"), view.banned.map(b => el("tr", {}, el("td", {}, b.peer_id ? peerCell(b.peer_id) : el("span", { class: "mono", title: "Kademlia id" }, b.node_id)), numCell(b.failures), el("td", {}, untilText(b.until)))), "None.", 3);
}

function renderModels(models) {
  fill(document.querySelector("#models tbody"), models.map(m => el("tr", { "data-model": m.name },
    el("td", {}, m.name), el("td", { title: `version ${m.version}` }, savedAt(m.version)), el("td", {}, m.publisher ? peerCell(m.publisher) : "–"), numCell(m.holders.length),
    el("td", {}, [m.held_version !== null ? "held" : null, m.loaded_version !== null ? "loaded" : null].filter(Boolean).join(", ") || "–"))),
  "No model in the swarm yet.", 5);
  document.getElementById("model-count").textContent = `(${models.length})`;
  const offered = models.map(m => m.name).join("\n");
  if (offered !== state.modelsOffered) {
    const select = document.getElementById("query-model");
    const chosen = select.value;
    select.replaceChildren(...models.map(m => el("option", { value: m.name }, m.name)));
    if (models.some(m => m.name === chosen)) select.value = chosen;
    state.modelsOffered = offered;
  }
}

function hopList(route) {
  return el("div", { class: "hops" }, route.map(h => el("span", { class: "hop " + h.outcome, "data-hop": h.expert, title: `layer ${h.layer}, weight ${num(h.weight, 3)}, host ${h.host || "none"}` },
    `L${h.layer} ${h.expert}`, h.host ? ` @ ${short(h.host)}` : "", h.outcome === "null" ? "" : ` ${num(h.latency_ms, 1)} ms`, h.outcome === "ok" ? "" : ` ${h.outcome}`)));
}

function renderRoutes(routes) {
  const list = routes.queries.map(q => el("div", { class: "query" },
    el("div", {}, el("strong", {}, q.model), q.version ? ` of ${savedAt(q.version)}` : "", " · ",
      el("span", { class: "badge " + (q.status === 200 ? "ok" : "bad") }, String(q.status)), ` · ${num(q.elapsed_ms, 1)} ms · ${ago(q.at)}`),
    q.error ? el("div", { class: "problem" }, q.error) : null,
    q.texts.map(t => [el("div", { class: "text" }, "“", t.text, "”", t.label ? [" → ", el("span", { class: "label" }, t.label)] : ""), hopList(t.route)])));
  document.getElementById("route-list").replaceChildren(...(list.length ? list : [el("p", { class: "muted" }, "No query answered here yet.")]));
  document.getElementById("route-count").textContent = `(${routes.queries.length})`;
}

// One refresh at a time; the next starts a few seconds after the last one ended (a slow DHT walk never piles up).
let refreshing = null, again = false, timer = null;

function refresh() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  clearTimeout(timer);
  refreshing = refreshOnce().finally(() => {
    refreshing = null;
    if (again) {
      again = false;
      refresh();
    } else {
      timer = setTimeout(refresh, RefreshMs);
    }
  });
  return refreshing;
}

async function refreshOnce() {
  const problems = [];
  const step = async (path, render) => {
    try { render(await getJson(path)); } catch (e) { problems.push(e.message); }
  };
  await step("/v1/status", renderStatus);
  await Promise.all([step("/v1/experts", renderExperts), step("/v1/peers", renderPeers), step("/v1/models", renderModels), step("/v1/routes", renderRoutes)]);
  const problem = document.getElementById("problem");
  problem.hidden = problems.length === 0;
  problem.textContent = problems.length ? "The node did not answer: " + problems.join("; ") : "";
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
}

async function ask(event) {
  event.preventDefault();
  const button = document.getElementById("query-send");
  const answer = document.getElementById("answer");
  const model = document.getElementById("query-model").value;
  const text = document.getElementById("query-text").value;
  button.disabled = true;
  answer.replaceChildren(el("p", { class: "muted" }, "Asking " + model + "…"));
  try {
    const response = await fetch("/v1/query", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model, text }) });
    const body = await response.json();
    if (!response.ok) {
      answer.replaceChildren(el("p", { class: "problem", "data-error": response.status }, `${response.status}: ${body.error}`));
      return;
    }
    const result = body.results[0];
    answer.replaceChildren(
      el("p", { "data-answer": "" }, el("span", { class: "label", id: "answer-label" }, result.label), ` from ${body.model} of ${savedAt(body.version)} in ${num(body.elapsed_ms, 1)} ms`),
      el("div", { class: "scroll" }, el("table", { id: "answer-probabilities" },
        el("thead", {}, el("tr", {}, el("th", {}, "label"), el("th", {}, "p"))),
        el("tbody", {}, result.probabilities.map(p => el("tr", {}, el("td", {}, p.label), numCell(p.p, 3)))))),
      el("h3", {}, "Route"),
      el("div", { class: "scroll" }, el("table", { id: "answer-route" },
        el("thead", {}, el("tr", {}, ["layer", "expert", "host", "weight", "ms", "outcome"].map(h => el("th", {}, h)))),
        el("tbody", {}, result.route.map(h => el("tr", { "data-hop": h.expert, "data-host": h.host },
          numCell(h.layer), el("td", { class: "mono" }, h.expert), el("td", {}, h.host ? peerCell(h.host) : "–"), numCell(h.weight, 3), numCell(h.latency_ms, 1),
          el("td", {}, h.outcome)))))));
    refresh();
  } catch (e) {
    answer.replaceChildren(el("p", { class: "problem" }, "The node did not answer: " + e.message));
  } finally {
    button.disabled = false;
  }
}

document.getElementById("query-form").addEventListener("submit", ask);
refresh();
