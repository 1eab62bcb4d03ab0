import type { NatsConnection } from "@nats-io/nats-core";
import { DEFAULT_PREFIX } from "@natsmesh/protocol";
import { assertPrefix, checkInt, type TokenSource } from "@natsmesh/protocol/internal";
import type { PresenceSource } from "./presence-source.js";

/** What the dashboard logs: a pino logger fits, and so does `console`-like code. */
export interface DashboardLogger {
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/** What a dashboard does, apart from its connection and presence source. */
export interface DashboardSettings {
  /** The mesh prefix, shown on the page. @default "mesh" */
  prefix?: string;
  /**
   * Token sent as `Authorization` with `$SRV.STATS` requests, for agents that check tokens:
   * its scope must hold `stats:*` (or `stats:<service>` per service). Without it, such agents
   * refuse and the page shows presence only.
   */
  token?: TokenSource;
  /** How often each service is asked for its stats while a page is open. @default 2000 */
  pollMs?: number;
  /** Points kept per service for the charts (600 × 2 s: 20 minutes). @default 600 */
  historyPoints?: number;
  /** Presence changes kept for the feed. @default 200 */
  feedSize?: number;
  /** Pages (event streams) served at once. @default 32 */
  maxClients?: number;
  /** Unsent bytes a page may fall behind by before it is disconnected. @default 1048576 */
  maxBufferedBytes?: number;
  /**
   * The address the HTTP server listens on. When it is a loopback address, requests must name a
   * loopback host (`localhost`, `127.0.0.1`, `[::1]`), which defeats DNS rebinding.
   * @default "127.0.0.1"
   */
  listenHost?: string;
  /** @default silent */
  logger?: DashboardLogger;
}

/** Options of {@link createDashboard}. */
export interface DashboardOptions extends DashboardSettings {
  /** The connection `$SRV.STATS` requests go out on, and whose state the page shows. */
  connection: NatsConnection;
  /** The live instances (see {@link PresenceSource}). */
  presence: PresenceSource;
}

/** Defaults of {@link DashboardOptions}. */
export const DASHBOARD_DEFAULTS = {
  prefix: DEFAULT_PREFIX,
  pollMs: 2000,
  historyPoints: 600,
  feedSize: 200,
  maxClients: 32,
  maxBufferedBytes: 1024 * 1024,
  listenHost: "127.0.0.1",
} as const;

/** {@link DashboardSettings}, checked, with every default applied. */
export interface ResolvedDashboardSettings {
  readonly prefix: string;
  readonly token: TokenSource | undefined;
  readonly pollMs: number;
  readonly historyPoints: number;
  readonly feedSize: number;
  readonly maxClients: number;
  readonly maxBufferedBytes: number;
  readonly listenHost: string;
  readonly logger: DashboardLogger;
}

/** {@link DashboardOptions}, checked, with every default applied. */
export interface ResolvedDashboardOptions extends ResolvedDashboardSettings {
  readonly connection: NatsConnection;
  readonly presence: PresenceSource;
}

const SILENT: DashboardLogger = { warn: () => undefined, debug: () => undefined };

/** Checks `options` and applies the defaults; throws `TypeError` on a bad value. */
export function resolveDashboardOptions(options: DashboardOptions): ResolvedDashboardOptions {
  const settings = resolveDashboardSettings(options);
  if (options.connection === undefined || options.connection === null) {
    throw new TypeError("connection is required");
  }
  const presence = options.presence;
  if (typeof presence?.snapshot !== "function" || typeof presence.subscribe !== "function") {
    throw new TypeError("presence must have snapshot() and subscribe()");
  }
  return { ...settings, connection: options.connection, presence };
}

/**
 * Checks settings and applies the defaults; throws `TypeError` on a bad value. Hosts call it
 * when they resolve their own options, so a bad value fails before anything starts.
 */
export function resolveDashboardSettings(settings: DashboardSettings): ResolvedDashboardSettings {
  if (settings === null || typeof settings !== "object") {
    throw new TypeError("dashboard options must be an object");
  }
  const o = settings;
  const prefix = o.prefix ?? DASHBOARD_DEFAULTS.prefix;
  assertPrefix(prefix);
  const token = o.token;
  if (token !== undefined && typeof token !== "string" && typeof token !== "function") {
    throw new TypeError("token must be a string or a function returning one");
  }
  const listenHost = o.listenHost ?? DASHBOARD_DEFAULTS.listenHost;
  if (typeof listenHost !== "string" || listenHost === "") {
    throw new TypeError("listenHost must be a non-empty string");
  }
  return {
    prefix,
    token,
    pollMs: checkInt(o.pollMs ?? DASHBOARD_DEFAULTS.pollMs, "pollMs", 100, 3_600_000),
    historyPoints: checkInt(
      o.historyPoints ?? DASHBOARD_DEFAULTS.historyPoints,
      "historyPoints",
      1,
      100_000,
    ),
    feedSize: checkInt(o.feedSize ?? DASHBOARD_DEFAULTS.feedSize, "feedSize", 0, 100_000),
    maxClients: checkInt(o.maxClients ?? DASHBOARD_DEFAULTS.maxClients, "maxClients", 1, 10_000),
    maxBufferedBytes: checkInt(
      o.maxBufferedBytes ?? DASHBOARD_DEFAULTS.maxBufferedBytes,
      "maxBufferedBytes",
      1024,
      1024 ** 3,
    ),
    listenHost,
    logger: o.logger ?? SILENT,
  };
}
