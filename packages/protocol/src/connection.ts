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

/** The nats.js connection options of a natsmesh process named `name`. */
export function connectionOptions(
  servers: string | readonly string[] | undefined,
  name: string,
): ConnectionOptions {
  return { ...CONNECTION_DEFAULTS, servers: parseServers(servers), name };
}
