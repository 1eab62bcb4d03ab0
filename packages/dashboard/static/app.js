// The page's state, fed by the server's event stream (state, presence, stats, nats), and a
// render per animation frame at most. EventSource reconnects by itself; each reconnect starts
// with a fresh "state" event, so nothing is patched onto a stale view.
import { renderBanner, renderFeed, renderStatus, renderSummary } from "./render.js";
import { renderServices } from "./services.js";

const FEED_SIZE = 200;

const state = {
  prefix: "",
  pollMs: 2000,
  server: "connecting",
  serverLostAt: undefined,
  nats: { state: "connected", since: Date.now() },
  /** Records by `<service>.<id>`. */
  instances: new Map(),
  /** Presence changes, oldest first. */
  feed: [],
  /** By service: { points, instances, stats }. */
  services: new Map(),
  lastStatsAt: undefined,
};

function serviceEntry(name) {
  let s = state.services.get(name);
  if (s === undefined) {
    s = { points: [], instances: {}, stats: "waiting" };
    state.services.set(name, s);
  }
  return s;
}

function applyState(data) {
  state.prefix = data.prefix;
  state.pollMs = data.pollMs;
  state.nats = data.nats;
  state.instances = new Map(data.instances.map((r) => [`${r.service}.${r.id}`, r]));
  state.feed = data.feed.slice(-FEED_SIZE);
  state.services = new Map(
    Object.entries(data.services).map(([name, s]) => [name, { ...s, points: [...s.points] }]),
  );
  for (const r of data.instances) serviceEntry(r.service);
}

function applyPresence(entry) {
  const r = entry.instance;
  const key = `${r.service}.${r.id}`;
  if (entry.type === "down") {
    state.instances.delete(key);
    if (![...state.instances.values()].some((i) => i.service === r.service))
      state.services.delete(r.service);
  } else {
    state.instances.set(key, r);
    serviceEntry(r.service);
  }
  state.feed.push(entry);
  if (state.feed.length > FEED_SIZE) state.feed.shift();
}

function applyStats(event) {
  state.lastStatsAt = event.at;
  // Enough for the charts' longest window (10 min).
  const keep = Math.ceil(600_000 / state.pollMs) + 1;
  for (const [name, s] of Object.entries(event.services)) {
    if (!state.services.has(name)) continue;
    const entry = serviceEntry(name);
    if (s.point.reporting > 0) {
      entry.points.push(s.point);
      if (entry.points.length > keep) entry.points.splice(0, entry.points.length - keep);
    }
    entry.instances = s.instances;
    entry.stats = s.stats;
  }
}

let pending = false;
function render() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    const now = Date.now();
    renderStatus(state);
    renderBanner(state);
    renderSummary(state);
    renderServices(state, now);
    renderFeed(state);
  });
}

function on(source, event, apply) {
  source.addEventListener(event, (e) => {
    try {
      apply(JSON.parse(e.data));
    } catch (err) {
      console.error(`dashboard: bad ${event} event`, err);
      return;
    }
    render();
  });
}

const source = new EventSource("events");
on(source, "state", (data) => {
  applyState(data);
  state.server = "live";
  state.serverLostAt = undefined;
});
on(source, "presence", applyPresence);
on(source, "stats", applyStats);
on(source, "nats", (nats) => {
  state.nats = nats;
});
source.addEventListener("error", () => {
  // The stream broke (server gone, or it dropped us for falling behind); EventSource retries.
  if (state.server !== "gone") {
    state.server = "gone";
    state.serverLostAt = Date.now();
    render();
  }
});

// Ages and "polled at" move on even when nothing else happens.
setInterval(render, 1000);
render();
