import { readFileSync } from "node:fs";
import type { NatsConnection } from "@nats-io/nats-core";
import type { DashboardSettings } from "@natsmesh/dashboard";
import { resolveDashboardSettings } from "@natsmesh/dashboard/internal";
import {
  createPresenceSigner,
  DEFAULT_PREFIX,
  type NatsCredentials,
  type PresenceSigner,
} from "@natsmesh/protocol";
import {
  assertPrefix,
  authFromEnv,
  type ConnectionIdentity,
  checkInt,
  checkTokenGateOptions,
  heartbeatMsFromEnv,
  logLevelFromEnv,
  type PresenceQuotas,
  prefixFromEnv,
  resolveIdentity,
  resolvePresenceQuotas,
  serversFromEnv,
  type TokenGateOptions,
  type TokenSource,
  tokenFromEnv,
} from "@natsmesh/protocol/internal";
import { type Logger, pino } from "pino";

/** A JSON Web Key, as the protocol signs with it. */
type JWK = Parameters<typeof createPresenceSigner>[0];

/** The dashboard on the registry's HTTP endpoint. */
export interface RegistryDashboardOptions {
  /**
   * Token sent with the dashboard's `$SRV.STATS` requests, for agents that check tokens; its
   * scope must hold `stats:*`. Without one, such agents' traffic is not shown.
   * @default `MESH_TOKEN`
   */
  token?: TokenSource;
  /** How often each service is asked for its stats while a page is open. @default 2000 */
  pollMs?: number;
  /** Pages served at once. @default 32 */
  maxClients?: number;
}

/** The optional HTTP endpoint: `/healthz`, `/v1/services`, `/metrics` and the dashboard. */
export interface RegistryHttpOptions {
  /** Port to listen on; 0 picks a free one (see `registry.httpPort`). */
  port: number;
  /**
   * Address to bind. Loopback by default, so the endpoint is not exposed by accident.
   * @default "127.0.0.1"
   */
  host?: string;
  /**
   * The live dashboard at `/dashboard/` (and `/`): instances from this registry's memory,
   * traffic from the agents' `$SRV.STATS`. `false` serves the JSON endpoints only.
   * @default {}
   */
  dashboard?: RegistryDashboardOptions | false;
}

/**
 * Token checking of presence messages (`auth`): the keys, issuer and audience tokens must
 * match; and the key the leader signs records with.
 */
export interface RegistryAuthOptions extends TokenGateOptions {
  /**
   * The private Ed25519 JWK (an object, inline JSON or a file path) the leader signs every
   * record it writes with, so SDKs given the registries' keys (`presence: { keys }`) can tell
   * its records from forgeries. Its public half, with the same `kid`, goes into that key set.
   * Give every registry of a mesh the same key, or a new leader rewrites every record.
   * Required with auth unless `unsignedPresence` is `true`: `startRegistry` refuses to start
   * without one.
   * @default `MESH_SIGNING_KEY`
   */
  signingKey?: JWK | string;
  /**
   * Write records unsigned, as before signing was the default: SDKs cannot tell them from
   * forged ones, and a warning says so at start. Not allowed with a `signingKey`.
   * @default `true` when `MESH_UNSIGNED_PRESENCE` is `1` or `true`, else `false`
   */
  unsignedPresence?: boolean;
}

/** Options of {@link startRegistry}. */
export interface RegistryOptions {
  /**
   * NATS servers: an array or a comma-separated string. Ignored when `connection` is given.
   * @default `NATS_URL` when set, else "nats://127.0.0.1:4222"
   */
  servers?: string | string[];
  /** An existing connection to use; the registry then leaves it open on `stop()`. */
  connection?: NatsConnection;
  /**
   * NATS credentials of the connection the registry opens (ignored with `connection`): a user
   * and password, a token, a `.creds` file or an nkey seed file. Never logged.
   * @default `NATS_USER` + `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_CREDS` or `NATS_NKEY` when set
   */
  credentials?: NatsCredentials;
  /**
   * Inbox prefix of the connection the registry opens (ignored with `connection`), for NATS
   * permissions that give its user its own inboxes (`_INBOX_registry`).
   * @default `NATS_INBOX_PREFIX` when set, else "_INBOX"
   */
  inboxPrefix?: string;
  /**
   * Subject prefix of the mesh whose presence this registry keeps (`<P>_presence`).
   * @default `MESH_PREFIX` when set, else "mesh"
   */
  prefix?: string;
  /**
   * An instance with no `up` or `hb` for this long is evicted (3 × the agents' default
   * heartbeat of 1000 ms).
   * @default 3000
   */
  heartbeatTimeoutMs?: number;
  /**
   * Lease time of the leader key: the leader renews it every `leaseMs / 3`, and a follower
   * takes it over once it has not changed for `leaseMs`.
   * @default 5000
   */
  leaseMs?: number;
  /**
   * Replicas of the `<P>_presence` and `<P>_registry` buckets when the registry creates them
   * (1–5; 3 on a 3-node cluster survives the loss of a node).
   * @default 1
   */
  replicas?: number;
  /** Serve health, the instance list and Prometheus metrics over HTTP. @default undefined (off) */
  http?: RegistryHttpOptions;
  /**
   * Where the registry logs: leadership, instances up, down and evicted, refused announcements.
   * @default pino JSON on stdout at `LOG_LEVEL` (default "info")
   */
  logger?: Logger;
  /**
   * Signed presence: every `up`, `hb` and `down` must carry `Authorization: Bearer <jwt>` whose
   * scope holds `announce:<service>` (or `announce:*`) for the service it announces; anything
   * else is dropped and counted. `false`: presence is trusted (NATS permissions decide),
   * whatever the environment says.
   * @default from `MESH_JWKS`, `MESH_ISSUER`, `MESH_AUDIENCE` when `MESH_JWKS` is set; else off
   */
  auth?: RegistryAuthOptions | false;
  /**
   * Bounds on the instances kept in memory and written to the bucket; an announcement beyond
   * them is refused, counted (`overQuota`, `natsmesh_registry_over_quota_total`) and logged
   * at most every 10 s.
   * @default { maxInstancesPerService: 1000, maxRecords: 10000, maxRecordBytes: 16384 }
   */
  quotas?: PresenceQuotas;
}

/** {@link RegistryOptions} with every default applied and every value checked. */
export interface ResolvedRegistryOptions {
  readonly servers: string | string[] | undefined;
  readonly connection: NatsConnection | undefined;
  /** Credentials and inbox prefix of the connection the registry opens. */
  readonly identity: ConnectionIdentity;
  readonly prefix: string;
  readonly heartbeatTimeoutMs: number;
  readonly leaseMs: number;
  readonly replicas: number;
  readonly http:
    | {
        readonly port: number;
        readonly host: string;
        /** Checked dashboard settings (the prefix and host are the registry's), or `false`. */
        readonly dashboard: DashboardSettings | false;
      }
    | undefined;
  readonly auth: TokenGateOptions | undefined;
  /** Signs the records the leader writes; only with auth and a signing key. */
  readonly signer: PresenceSigner | undefined;
  readonly quotas: Readonly<Required<PresenceQuotas>>;
  readonly logger: Logger;
}

/** Defaults of {@link RegistryOptions}. */
export const REGISTRY_DEFAULTS = {
  prefix: DEFAULT_PREFIX,
  heartbeatTimeoutMs: 3000,
  leaseMs: 5000,
  replicas: 1,
  httpHost: "127.0.0.1",
} as const;

/** Bounds of the numeric options; a lease below 300 ms leaves no room for a renewal round trip. */
export const REGISTRY_LIMITS = {
  minHeartbeatTimeoutMs: 30,
  minLeaseMs: 300,
  maxMs: 3_600_000,
  maxReplicas: 5,
} as const;

function resolveHttp(
  http: RegistryHttpOptions | undefined,
  prefix: string,
): ResolvedRegistryOptions["http"] {
  if (http === undefined) return undefined;
  if (http === null || typeof http !== "object") throw new TypeError("http must be an object");
  const host = http.host ?? REGISTRY_DEFAULTS.httpHost;
  if (typeof host !== "string" || host === "") {
    throw new TypeError("http.host must be a non-empty string");
  }
  const port = checkInt(http.port, "http.port", 0, 65_535);
  const d = http.dashboard ?? {};
  if (d === false) return { port, host, dashboard: false };
  if (d === null || typeof d !== "object") {
    throw new TypeError("http.dashboard must be an object or false");
  }
  const token = d.token ?? tokenFromEnv();
  const dashboard: DashboardSettings = {
    prefix,
    listenHost: host,
    ...(token === undefined ? {} : { token }),
    ...(d.pollMs === undefined ? {} : { pollMs: d.pollMs }),
    ...(d.maxClients === undefined ? {} : { maxClients: d.maxClients }),
  };
  try {
    resolveDashboardSettings(dashboard);
  } catch (err) {
    throw new TypeError(`http.dashboard: ${(err as Error).message}`);
  }
  return { port, host, dashboard };
}

function resolveAuth(auth: RegistryAuthOptions | false | undefined): {
  auth: TokenGateOptions | undefined;
  signer: PresenceSigner | undefined;
} {
  if (auth === false) return { auth: undefined, signer: undefined };
  const chosen: RegistryAuthOptions | undefined = auth ?? authFromEnv();
  if (chosen === undefined) return { auth: undefined, signer: undefined };
  const { signingKey, unsignedPresence, ...gate } = checkTokenGateOptions(
    chosen,
  ) as RegistryAuthOptions;
  if (unsignedPresence !== undefined && typeof unsignedPresence !== "boolean") {
    throw new TypeError(`auth.unsignedPresence must be a boolean, got ${String(unsignedPresence)}`);
  }
  const key = signingKey ?? (process.env.MESH_SIGNING_KEY?.trim() || undefined);
  const unsigned = unsignedPresence ?? unsignedPresenceFromEnv();
  if (key !== undefined && unsigned) {
    throw new TypeError(
      "auth.signingKey (MESH_SIGNING_KEY) and auth.unsignedPresence (MESH_UNSIGNED_PRESENCE) " +
        "exclude each other: give the key, or opt out of signed records, not both",
    );
  }
  if (key === undefined && !unsigned) {
    throw new TypeError(
      "auth is on but there is no presence signing key: set auth.signingKey or " +
        "MESH_SIGNING_KEY (a private Ed25519 JWK: an object, inline JSON or a file path) and " +
        "give its public half to SDKs as presence.keys or MESH_PRESENCE_KEYS; or opt out of " +
        "signed records with auth.unsignedPresence: true (MESH_UNSIGNED_PRESENCE=1)",
    );
  }
  return { auth: gate, signer: key === undefined ? undefined : signerOf(key) };
}

/**
 * The opt-out of signed records from `MESH_UNSIGNED_PRESENCE`: `1` or `true` → `true`; unset
 * or blank → `false`. Anything else is a `TypeError` naming the variable: a typo must not
 * quietly turn signing on or off.
 */
function unsignedPresenceFromEnv(): boolean {
  const raw = process.env.MESH_UNSIGNED_PRESENCE?.trim();
  if (raw === undefined || raw === "") return false;
  if (raw === "1" || raw === "true") return true;
  throw new TypeError(`MESH_UNSIGNED_PRESENCE must be 1 or true (or unset), got ${raw}`);
}

/** A signer for a private JWK given as an object, inline JSON or a file path. */
function signerOf(key: JWK | string): PresenceSigner {
  let jwk: unknown = key;
  if (typeof key === "string") {
    let text = key;
    if (!key.trimStart().startsWith("{")) {
      try {
        text = readFileSync(key, "utf8");
      } catch (err) {
        throw new TypeError(`auth.signingKey: cannot read the key file ${key}`, { cause: err });
      }
    }
    try {
      jwk = JSON.parse(text);
    } catch (err) {
      throw new TypeError("auth.signingKey is not JSON (a private JWK)", { cause: err });
    }
  }
  return createPresenceSigner(jwk as JWK);
}

/** Three heartbeats of `MESH_HEARTBEAT_MS`, when it is set: the agents' own interval. */
function heartbeatTimeoutFromEnv(): number | undefined {
  const heartbeatMs = heartbeatMsFromEnv();
  return heartbeatMs === undefined ? undefined : 3 * heartbeatMs;
}

/**
 * Resolves and checks registry options into a new object; throws `TypeError` on anything
 * invalid, before any connection is made. Never mutates `options`.
 */
export function resolveRegistryOptions(options: RegistryOptions = {}): ResolvedRegistryOptions {
  if (options === null || typeof options !== "object") {
    throw new TypeError("startRegistry options must be an object");
  }
  const prefix = options.prefix ?? prefixFromEnv() ?? REGISTRY_DEFAULTS.prefix;
  assertPrefix(prefix);
  const L = REGISTRY_LIMITS;
  return {
    servers: options.servers ?? serversFromEnv(),
    connection: options.connection,
    identity: resolveIdentity(options, prefix),
    ...resolveAuth(options.auth),
    quotas: resolvePresenceQuotas(options.quotas, "quotas"),
    prefix,
    heartbeatTimeoutMs: checkInt(
      options.heartbeatTimeoutMs ??
        heartbeatTimeoutFromEnv() ??
        REGISTRY_DEFAULTS.heartbeatTimeoutMs,
      "heartbeatTimeoutMs",
      L.minHeartbeatTimeoutMs,
      L.maxMs,
    ),
    leaseMs: checkInt(
      options.leaseMs ?? REGISTRY_DEFAULTS.leaseMs,
      "leaseMs",
      L.minLeaseMs,
      L.maxMs,
    ),
    replicas: checkInt(
      options.replicas ?? REGISTRY_DEFAULTS.replicas,
      "replicas",
      1,
      L.maxReplicas,
    ),
    http: resolveHttp(options.http, prefix),
    logger: options.logger ?? pino({ level: logLevelFromEnv() }),
  };
}
