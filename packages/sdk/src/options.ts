import type { NatsConnection } from "@nats-io/nats-core";
import { type CodecName, codecs, DEFAULT_PREFIX, type NatsCredentials } from "@natsmesh/protocol";
import {
  assertPrefix,
  type ConnectionIdentity,
  checkInt,
  checkProvider,
  type EventStreamOptions,
  prefixFromEnv,
  refuseMeterProvider,
  resolveEventStreamOptions,
  resolveIdentity,
  serversFromEnv,
  type TokenSource,
  tokenFromEnv,
  withDefaults,
} from "@natsmesh/protocol/internal";
import type { TracerProvider } from "@opentelemetry/api";
import { type Logger, pino } from "pino";
import { type Balance, checkBalance } from "./balancer.js";
import {
  type PresenceOptions,
  type ResolvedPresenceOptions,
  resolvePresenceOptions,
} from "./presence-options.js";

/** Options of {@link connectMesh}. */
export interface MeshOptions {
  /**
   * NATS servers: an array or a comma-separated string. Ignored when `connection` is given.
   * @default `NATS_URL` when set, else "nats://127.0.0.1:4222"
   */
  servers?: string | string[];
  /** An existing connection; the mesh then leaves it open on `close()`. */
  connection?: NatsConnection;
  /**
   * NATS credentials of the connection the mesh opens (ignored with `connection`): a user and
   * password, a token, a `.creds` file or an nkey seed file. Never logged. Not the natsmesh
   * `token`, which agents check.
   * @default `NATS_USER` + `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_CREDS` or `NATS_NKEY` when set
   */
  credentials?: NatsCredentials;
  /**
   * Subject prefix of the mesh (`P` in `P.svc.…`): the agents' and registries' prefix.
   * @default `MESH_PREFIX` when set, else "mesh"
   */
  prefix?: string;
  /**
   * Default time a call may take, attempts and retries included.
   * @default 5000
   */
  timeoutMs?: number;
  /** @default "msgpack" */
  codec?: CodecName;
  /**
   * Default retries of calls that never ran (`UNAVAILABLE`, `OVERLOADED`) and, for idempotent
   * calls, of timed-out attempts.
   * @default 2
   */
  retries?: number;
  /**
   * How long `close()` lets pending calls finish before rejecting them with `UNAVAILABLE`.
   * @default 5000
   */
  closeTimeoutMs?: number;
  /**
   * Inbox prefix for replies; set it when NATS permissions restrict `_INBOX.>`. Only used for
   * a connection the mesh opens itself (a given connection keeps its own). Agents answer only
   * reply subjects under the inbox prefixes they are told about (their `inboxPrefixes` option,
   * `MESH_INBOX_PREFIXES`): list a custom prefix there too, or its calls time out. It may not
   * overlap the mesh prefix.
   * @default `NATS_INBOX_PREFIX` when set, else "_INBOX"
   */
  inboxPrefix?: string;
  /**
   * Default balancing strategy of calls.
   * @default "queue"
   */
  balance?: Balance;
  /**
   * Keep a presence view (a KV watch of `<P>_presence`) for `instances()`, `watch()` and the
   * strategies other than `queue`. Off, every call uses the queue subject. Settings instead of
   * `true`: the registries' keys, so only records they signed are taken, and quotas on what
   * the view keeps (see {@link PresenceOptions}).
   * @default true
   */
  presence?: boolean | PresenceOptions;
  /**
   * The caller's token, sent as `Authorization: Bearer <jwt>`: a string, or a function (sync or
   * async) called again before the token expires.
   * @default `MESH_TOKEN` when set
   */
  token?: TokenSource;
  /**
   * Settings of `<P>_events` and `<P>_dlq` when the first `emit()` has to create them (an
   * existing stream is used as it is).
   * @default 1 replica, events kept 7 days or 1 GiB, dead letters 30 days or 256 MiB
   */
  streams?: EventStreamOptions;
  /**
   * Where the client's spans go: one client span per attempt of a call, one producer span per
   * emit, their context sent in the request's headers.
   * @default the global TracerProvider of `@opentelemetry/api` (none registered: no spans)
   */
  tracerProvider?: TracerProvider;
  /** @default silent */
  logger?: Logger;
}

/** Options of one `mesh.request()`. */
export interface RequestOptions {
  /** Time the call may take, all attempts included. @default the mesh's `timeoutMs` */
  timeout?: number;
  /** Absolute deadline (Unix epoch ms); the earlier of this and `timeout` applies. */
  deadline?: number;
  /** Aborting rejects the call at once with the signal's reason. */
  signal?: AbortSignal;
  /** Extra request headers; a `traceparent` here makes the call part of that trace. */
  headers?: Record<string, string>;
  /** @default the mesh's codec */
  codec?: CodecName;
  /** The call may run more than once: timed-out attempts are retried with the same idempotency key. */
  idempotent?: boolean;
  /** `Mesh-Idempotency-Key` of an idempotent call. @default a new NUID per call */
  idempotencyKey?: string;
  /** @default the mesh's `retries` */
  retries?: number;
  /** Time one attempt of an idempotent call may take. @default timeout / (retries + 1) */
  attemptTimeout?: number;
  /** @default the mesh's `balance` ("queue") */
  balance?: Balance;
  /**
   * Only instances of this version or semver range (`^1`): a constraint. The call is picked from
   * the presence view (with `balance: "queue"` too, uniformly) and fails with `UNAVAILABLE` when
   * no ready instance matches; it never goes to the queue group. Needs `presence: true`.
   */
  version?: string;
  /**
   * Prefer instances of this zone: a preference. Others take the call when the zone has none;
   * with `balance: "queue"` the call is picked from presence, or goes to the queue group when
   * presence knows no instance.
   */
  zone?: string;
  /** Only instances whose metadata has all these entries: a constraint, like `version`. */
  metadata?: Record<string, string>;
  /** A token for this call only, instead of the mesh's. */
  token?: string;
}

export const MESH_DEFAULTS = {
  prefix: DEFAULT_PREFIX,
  timeoutMs: 5000,
  codec: "msgpack",
  retries: 2,
  closeTimeoutMs: 5000,
  balance: "queue",
  presence: true,
} as const satisfies Partial<MeshOptions>;

/** {@link MeshOptions} with every default applied and every value checked. */
export interface ResolvedMeshOptions {
  servers: string | string[] | undefined;
  connection: NatsConnection | undefined;
  prefix: string;
  timeoutMs: number;
  codec: CodecName;
  retries: number;
  closeTimeoutMs: number;
  /** Credentials and inbox prefix of the connection the mesh opens. */
  identity: ConnectionIdentity;
  balance: Balance;
  /** The presence view's settings; `undefined` with `presence: false`. */
  presence: ResolvedPresenceOptions | undefined;
  token: TokenSource | undefined;
  streams: Required<EventStreamOptions>;
  tracerProvider: TracerProvider | undefined;
  logger: Logger;
}

function checkToken(token: unknown): TokenSource | undefined {
  if (token === undefined || typeof token === "function") return token as TokenSource | undefined;
  if (typeof token !== "string" || token.length === 0 || /[\r\n]/.test(token)) {
    throw new TypeError(
      "token must be a non-empty string without CR/LF, or a function returning one",
    );
  }
  return token;
}

/** Throws `TypeError` unless `codec` names a codec. */
export function checkCodec(codec: unknown): CodecName {
  if (typeof codec !== "string" || !Object.hasOwn(codecs, codec)) {
    throw new TypeError(`codec must be "msgpack" or "json", got ${String(codec)}`);
  }
  return codec as CodecName;
}

/** Resolves and checks mesh options; throws `TypeError` on anything invalid. Never mutates `options`. */
export function resolveMeshOptions(options: MeshOptions = {}): ResolvedMeshOptions {
  // MESH_PREFIX is read only when no prefix is given: a bad value there cannot fail a caller
  // who set the prefix in code.
  refuseMeterProvider(options);
  const o = withDefaults(MESH_DEFAULTS, { ...options, prefix: options.prefix ?? prefixFromEnv() });
  assertPrefix(o.prefix);
  return {
    servers: o.servers ?? serversFromEnv(),
    connection: o.connection,
    prefix: o.prefix,
    timeoutMs: checkInt(o.timeoutMs, "timeoutMs", 1, 3_600_000),
    codec: checkCodec(o.codec),
    retries: checkInt(o.retries, "retries", 0, 100),
    closeTimeoutMs: checkInt(o.closeTimeoutMs, "closeTimeoutMs", 0, 3_600_000),
    identity: resolveIdentity(o, o.prefix),
    balance: checkBalance(o.balance),
    presence: resolvePresenceOptions(o.presence),
    token: checkToken(o.token ?? tokenFromEnv()),
    streams: resolveEventStreamOptions(o.streams),
    tracerProvider: checkProvider(o.tracerProvider, "getTracer", "tracerProvider"),
    logger: o.logger ?? pino({ level: "silent" }),
  };
}
