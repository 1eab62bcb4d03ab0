import type { ConnectionOptions } from "@nats-io/nats-core";

/** Server used when neither an option nor `NATS_URL` names one. */
export const DEFAULT_SERVER = "nats://127.0.0.1:4222";

/**
 * Connection settings every natsmesh process uses: reconnect forever (nats.js stops after 10
 * attempts by default) and ping often enough to notice a dead server within seconds rather
 * than nats.js' default two minutes.
 */
export const CONNECTION_DEFAULTS = {
  maxReconnectAttempts: -1,
  reconnectTimeWait: 250,
  reconnectJitter: 100,
  pingInterval: 2_000,
  maxPingOut: 2,
  waitOnFirstConnect: false,
} as const satisfies ConnectionOptions;

/**
 * Splits a server list: an array, or one string of comma-separated URLs (the `NATS_URL` form).
 * Empty input gives {@link DEFAULT_SERVER}. Throws `TypeError` on a value that is not a list.
 */
export function parseServers(servers: string | readonly string[] | undefined): string[] {
  if (servers === undefined) return [DEFAULT_SERVER];
  const list = typeof servers === "string" ? servers.split(",") : servers;
  if (!Array.isArray(list)) throw new TypeError("servers must be a string or an array of strings");
  const out = list.map((s) => String(s).trim()).filter((s) => s.length > 0);
  return out.length > 0 ? out : [DEFAULT_SERVER];
}

/**
 * Bytes nats.js may buffer from synchronous publishes before it writes them out inline, instead
 * of in the microtask that follows (nats.js' default is 32 KiB). A burst of 128 calls with a
 * token reference is ~33 KB: at 32 KiB it leaves in two socket writes, and nats-server pays for
 * the extra read (issue 11, docs/benchmarks.md). Everything is still written within the same
 * event-loop turn; only the number of writes changes.
 */
export const FLUSH_THRESHOLD_BYTES = 256 * 1024;

/** The nats.js connection options of a natsmesh process named `name`. */
export function connectionOptions(
  servers: string | readonly string[] | undefined,
  name: string,
): ConnectionOptions {
  // `pendingLimit` is read by nats.js' ProtocolHandler but missing from its ConnectionOptions
  // type; connection.test.ts fails if a nats.js upgrade stops honouring it.
  const flush = { pendingLimit: FLUSH_THRESHOLD_BYTES };
  return { ...CONNECTION_DEFAULTS, ...flush, servers: parseServers(servers), name };
}
