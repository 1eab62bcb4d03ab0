// Numbers and times as people read them. Values may come from peers: anything that is not a
// finite number prints as a dash.

const DASH = "—";
const isNum = (v) => typeof v === "number" && Number.isFinite(v);

/** Requests per second: one decimal below 10, whole numbers with separators above. */
export function rate(v) {
  if (!isNum(v)) return DASH;
  if (v === 0) return "0";
  if (v < 0.1) return "<0.1";
  return v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString("en-US");
}

/** A share (0–1) as a percentage. */
export function percent(v) {
  if (!isNum(v)) return DASH;
  if (v === 0) return "0 %";
  if (v < 0.001) return "<0.1 %";
  return `${(v * 100).toFixed(v < 0.1 ? 1 : 0)} %`;
}

/** Milliseconds in the unit that reads best: µs, ms or s. */
export function duration(ms) {
  if (!isNum(ms)) return DASH;
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(ms < 100 ? 1 : 0)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** How long ago `since` (epoch ms) was: 42s, 5m 03s, 2h 10m, 3d 4h. */
export function age(since, now) {
  if (!isNum(since)) return DASH;
  const s = Math.max(0, Math.floor((now - since) / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  const hours = Math.floor(m / 60);
  if (hours < 24) return `${hours}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

/** A wall-clock time, HH:MM:SS. */
export function clock(at) {
  if (!isNum(at)) return DASH;
  return new Date(at).toLocaleTimeString("en-GB", { hour12: false });
}

/**
 * The last characters of an instance id; the full id goes in a title. NUIDs of one process
 * share their first 12 characters, so the end is what tells instances apart.
 */
export function shortId(id) {
  return String(id).slice(-8);
}
