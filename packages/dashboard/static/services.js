// A card per service: its charts, error codes and instances. Peer-controlled strings go through
// h(), which only ever makes text nodes and plain attributes.
import { sparkline } from "./charts.js";
import { h } from "./dom.js";
import { age, duration, percent, rate, shortId } from "./format.js";

/** The last point of a service's traffic, if any. */
export function lastPoint(service) {
  return service.points.length === 0 ? undefined : service.points[service.points.length - 1];
}

const STATS_NOTE = {
  waiting: "gathering stats…",
  silent: "no stats: the instances did not answer $SRV.STATS",
  UNAUTHENTICATED: "stats refused: start the dashboard with a token (--token or MESH_TOKEN)",
  FORBIDDEN: "stats refused: the token's scope needs stats:* or stats:",
};

function statsNote(name, stats) {
  if (stats === "ok") return null;
  const text = STATS_NOTE[stats] ?? "no stats";
  return h(
    "p",
    { class: "stats-note", "data-stats": stats },
    stats === "FORBIDDEN" ? `${text}${name}` : text,
  );
}

function metric(kind, label, value, chart) {
  return h(
    "div",
    { class: `metric ${kind}` },
    h(
      "div",
      { class: "metric-head" },
      h("span", { class: "metric-label" }, label),
      h("span", { class: "metric-value", "data-metric": kind }, value),
    ),
    chart,
  );
}

/** The service's points as chart series of { at, v }. */
function series(points) {
  const of = (value) => points.map((p) => ({ at: p.at, v: value(p) }));
  return {
    rps: of((p) => p.rps),
    // No requests, no errors: the line sits at zero rather than break.
    errors: of((p) => (p.errorRate === null ? 0 : p.errorRate * 100)),
    p50: of((p) => p.p50Ms),
    p99: of((p) => p.p99Ms),
  };
}

function errorRateText(p) {
  if (p === undefined || p.errorRate === null) return "—";
  return percent(p.errorRate);
}

/** Median and p99 in the chart's colours, so the numbers double as its legend. */
function latencyText(p) {
  if (p === undefined || p.p50Ms === null) return "—";
  return [
    h("span", { class: "p50", title: "median" }, duration(p.p50Ms)),
    " / ",
    h("span", { class: "p99", title: "99th percentile" }, duration(p.p99Ms)),
  ];
}

function metadataChips(metadata) {
  const entries = Object.entries(metadata ?? {});
  if (entries.length === 0) return null;
  return h(
    "span",
    { class: "chips" },
    entries
      .slice(0, 6)
      .map(([k, v]) => h("span", { class: "chip", title: `${k}=${v}` }, `${k}=${v}`)),
    entries.length > 6 ? h("span", { class: "chip more" }, `+${entries.length - 6}`) : null,
  );
}

/** Instance statuses the page knows; anything else a peer sends shows as grey. */
const STATUS_CLASS = {
  ready: "ready",
  draining: "draining",
  saturated: "saturated",
  unready: "unready",
};

function instanceRow(r, rates, now) {
  const ir = rates.get(r.id);
  return h(
    "tr",
    { "data-instance": r.id, "data-status": r.status },
    h(
      "td",
      null,
      h("span", {
        class: `status ${STATUS_CLASS[r.status] ?? "unknown"}`,
        title: r.status,
      }),
      r.status,
    ),
    h("td", { class: "mono", title: r.id }, shortId(r.id)),
    h("td", null, r.version),
    h("td", { class: "num" }, String(r.weight)),
    h("td", null, r.zone ?? "—"),
    h("td", { class: "host", title: `${r.host} (pid ${r.pid})` }, r.host),
    h("td", { class: "num" }, age(r.startedAt, now)),
    h("td", { class: "num", "data-metric": "instance-rps" }, ir === undefined ? "—" : rate(ir.rps)),
    h("td", { class: "meta" }, metadataChips(r.metadata)),
  );
}

function serviceCard(name, service, records, now, axis) {
  const p = lastPoint(service);
  const s = series(service.points);
  const versions = [...new Set(records.map((r) => r.version))];
  const rates = new Map(Object.entries(service.instances ?? {}));
  const errors = p === undefined ? [] : Object.entries(p.errors ?? {}).sort((a, b) => b[1] - a[1]);
  return h(
    "article",
    { class: "service", "data-service": name },
    h(
      "header",
      { class: "service-head" },
      h("h2", null, name),
      h("span", { class: "muted" }, `${records.length} instance${records.length === 1 ? "" : "s"}`),
      h(
        "span",
        { class: "versions" },
        versions.slice(0, 4).map((v) => h("span", { class: "chip version" }, v)),
        versions.length > 4 ? h("span", { class: "chip more" }, `+${versions.length - 4}`) : null,
      ),
    ),
    statsNote(name, service.stats),
    h(
      "div",
      { class: "metrics" },
      metric(
        "rps",
        "requests / s",
        p ? rate(p.rps) : "—",
        sparkline(
          [{ points: s.rps, kind: "rps", area: true }],
          axis,
          `requests per second of ${name}`,
        ),
      ),
      metric(
        "errors",
        "error rate",
        errorRateText(p),
        sparkline(
          [{ points: s.errors, kind: "errors", area: true }],
          axis,
          `error rate of ${name}`,
        ),
      ),
      metric(
        "latency",
        "p50 / p99",
        latencyText(p),
        sparkline(
          [
            { points: s.p99, kind: "p99" },
            { points: s.p50, kind: "p50" },
          ],
          axis,
          `p50 and p99 latency of ${name}`,
        ),
      ),
    ),
    errors.length === 0
      ? null
      : h(
          "p",
          { class: "error-codes" },
          "errors: ",
          errors.slice(0, 8).map(([code, n]) => h("span", { class: "chip error" }, `${code} ${n}`)),
        ),
    h(
      "table",
      { class: "instances" },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          ["status", "id", "version", "weight", "zone", "host", "age", "req/s", "metadata"].map(
            (c) => h("th", null, c),
          ),
        ),
      ),
      h(
        "tbody",
        null,
        records.map((r) => instanceRow(r, rates, now)),
      ),
    ),
  );
}

/** The service cards, by name, each with its charts and instances. */
export function renderServices(state, now) {
  const byService = new Map();
  for (const r of state.instances.values()) {
    const list = byService.get(r.service) ?? [];
    list.push(r);
    byService.set(r.service, list);
  }
  // Sixty polls: two minutes at the default 2 s; never under 30 s nor over 10 min.
  const windowMs = Math.min(600_000, Math.max(30_000, state.pollMs * 60));
  // Time runs up to the last poll, so the lines end at the right edge, not short of it.
  const to = state.lastStatsAt ?? now;
  const axis = { from: to - windowMs, to, maxGapMs: state.pollMs * 2.5 };
  const names = [...state.services.keys()].filter((n) => byService.has(n)).sort();
  const root = document.getElementById("services");
  if (names.length === 0) {
    root.replaceChildren(
      h(
        "div",
        { class: "empty" },
        h("h2", null, "No instances"),
        h(
          "p",
          null,
          `No agent has announced itself under the prefix ${state.prefix} yet. Start one, and it appears here.`,
        ),
      ),
    );
    return;
  }
  root.replaceChildren(
    ...names.map((n) =>
      serviceCard(
        n,
        state.services.get(n),
        byService.get(n).sort((a, b) => a.startedAt - b.startedAt || (a.id < b.id ? -1 : 1)),
        now,
        axis,
      ),
    ),
  );
  document.getElementById("window").textContent =
    windowMs < 60_000
      ? `charts: last ${windowMs / 1000} s`
      : `charts: last ${Math.round(windowMs / 60_000)} min`;
}
