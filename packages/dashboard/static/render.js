// Renders the page from the state app.js keeps. Every peer-controlled string goes through h(),
// which only ever makes text nodes and plain attributes.
import { h } from "./dom.js";
import { clock, percent, rate, shortId } from "./format.js";
import { lastPoint } from "./services.js";

/** The connection pill in the header, and the body's data-* state (tests read it). */
export function renderStatus(state) {
  const pill = document.getElementById("conn");
  const text = document.getElementById("conn-text");
  let kind;
  let label;
  if (state.server === "gone") {
    kind = "bad";
    label = "dashboard server offline";
  } else if (state.server === "connecting") {
    kind = "idle";
    label = "connecting…";
  } else if (state.nats.state !== "connected") {
    kind = state.nats.state === "closed" ? "bad" : "warn";
    label = state.nats.state === "closed" ? "NATS connection closed" : "NATS unreachable";
  } else {
    kind = "ok";
    label = "live";
  }
  pill.dataset.kind = kind;
  text.textContent = label;
  document.body.dataset.server = state.server;
  document.body.dataset.nats = state.nats.state;
  document.getElementById("prefix").textContent = state.prefix ?? "";
}

/** The banner that says what is wrong and what the page is showing meanwhile. */
export function renderBanner(state) {
  const banner = document.getElementById("banner");
  let content = null;
  if (state.server === "gone") {
    content = [
      h("strong", null, "The dashboard server is unreachable."),
      ` Retrying every few seconds. What you see is as of ${clock(state.serverLostAt)}.`,
    ];
    banner.dataset.kind = "bad";
  } else if (state.server === "live" && state.nats.state === "disconnected") {
    content = [
      h("strong", null, "NATS is unreachable"),
      ` since ${clock(state.nats.since)}. The dashboard keeps reconnecting; instances and traffic are as of then.`,
    ];
    banner.dataset.kind = "warn";
  } else if (state.server === "live" && state.nats.state === "closed") {
    content = [
      h("strong", null, "The dashboard's NATS connection is closed."),
      " Restart the dashboard to reconnect.",
    ];
    banner.dataset.kind = "bad";
  }
  banner.hidden = content === null;
  banner.replaceChildren(...(content ?? []));
  banner.setAttribute("role", content === null ? "status" : "alert");
}
/** The row of totals above the services. */
export function renderSummary(state) {
  const records = [...state.instances.values()];
  // Not ready: draining, saturated (full) or unready, counted by status.
  const notReady = new Map();
  for (const r of records) {
    if (r.status !== "ready") notReady.set(r.status, (notReady.get(r.status) ?? 0) + 1);
  }
  const statusNote =
    notReady.size === 0
      ? "all ready"
      : [...notReady].map(([status, n]) => `${n} ${status}`).join(" · ");
  let rps = 0;
  let eps = 0;
  let reporting = 0;
  for (const s of state.services.values()) {
    const p = lastPoint(s);
    if (p === undefined || p.at < state.lastStatsAt) continue;
    rps += p.rps;
    eps += p.eps;
    reporting++;
  }
  const withTraffic = [...state.services.values()].filter(
    (s) => (lastPoint(s)?.rps ?? 0) > 0,
  ).length;
  const tile = (metric, label, value, note) =>
    h(
      "div",
      { class: "tile" },
      h("div", { class: "tile-label" }, label),
      h("div", { class: "tile-value", "data-metric": metric }, value),
      h("div", { class: "tile-note" }, note),
    );
  document
    .getElementById("summary")
    .replaceChildren(
      tile(
        "services",
        "Services",
        String(state.services.size),
        reporting === 0 ? "" : `${withTraffic} with traffic`,
      ),
      tile("instances", "Instances", String(records.length), statusNote),
      tile(
        "total-rps",
        "Requests / s",
        reporting === 0 ? "—" : rate(rps),
        state.lastStatsAt ? `polled ${clock(state.lastStatsAt)}` : "waiting for stats",
      ),
      tile(
        "total-errors",
        "Errors",
        reporting === 0 || rps === 0 ? "—" : percent(eps / rps),
        reporting === 0 ? "" : `${rate(eps)} / s`,
      ),
    );
}

function describeUpdate(entry) {
  const before = entry.previous;
  const after = entry.instance;
  if (before === undefined) return "";
  const changes = [];
  for (const field of ["status", "weight", "version", "zone"]) {
    if (before[field] !== after[field])
      changes.push(`${field} ${before[field] ?? "—"} → ${after[field] ?? "—"}`);
  }
  if (JSON.stringify(before.metadata) !== JSON.stringify(after.metadata)) changes.push("metadata");
  return changes.join(", ");
}

/** The feed of presence changes, newest first. */
export function renderFeed(state) {
  const items = state.feed
    .slice(-100)
    .reverse()
    .map((e) =>
      h(
        "li",
        { class: `feed-item ${e.type}`, "data-feed": e.type, "data-instance": e.instance.id },
        h("time", { datetime: new Date(e.at).toISOString() }, clock(e.at)),
        h("span", { class: `badge ${e.type}` }, e.type),
        h("span", { class: "feed-service" }, e.instance.service),
        h("span", { class: "mono muted", title: e.instance.id }, shortId(e.instance.id)),
        h(
          "span",
          { class: "feed-detail" },
          e.type === "update" ? describeUpdate(e) : e.instance.version,
        ),
      ),
    );
  document
    .getElementById("feed")
    .replaceChildren(
      ...(items.length > 0 ? items : [h("li", { class: "muted" }, "No changes yet.")]),
    );
}
