import type { NatsConnection } from "@nats-io/nats-core";
import {
  type CodecName,
  DEFAULT_PREFIX,
  DEFAULT_WEIGHT,
  isValidName,
  type NatsCredentials,
  PresenceLimits,
} from "@natsmesh/protocol";
import {
  assertInboxPrefix,
  assertName,
  assertPrefix,
  authFromEnv,
  type ConnectionIdentity,
  checkInt,
  checkProvider,
  checkTokenGateOptions,
  DEFAULT_DECODE_LIMITS,
  DEFAULT_INBOX_PREFIX,
  type EventStreamOptions,
  heartbeatMsFromEnv,
  inboxPrefixesFromEnv,
  logLevelFromEnv,
  metricsFromEnv,
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
import type { AgentAuthOptions } from "./auth.js";
import type { RequestContext } from "./call.js";
import {
  type EventDefinition,
  type EventHandler,
  type ResolvedEventHandler,
  resolveEvents,
} from "./events/event-options.js";

/** A method of a service: gets the decoded payload, returns the reply value. */
// biome-ignore lint/suspicious/noExplicitAny: handlers declare their own payload type; `unknown` would refuse them.
export type Handler = (payload: any, ctx: RequestContext) => unknown;

/** A method with options: `{ handler, scope: "billing.write" }`. */
export interface MethodDefinition {
  handler: Handler;
  /**
   * Scope a caller's token must allow, as `<a>.<b>`, instead of `<service>.<method>`.
   * Only checked when auth is on.
   */
  scope?: string;
}

/** A method as the dispatcher runs it. */
export interface ResolvedMethod {
  handler: Handler;
  /** The `[service, method]` pair a token's scope must allow. */
  scope: readonly [string, string];
}

/** The part of an SDK mesh that handlers use for nested calls (`ctx.mesh`). */
export interface NestedMesh {
  request<T = unknown>(
    service: string,
    method: string,
    payload?: unknown,
    options?: NestedRequestOptions,
  ): Promise<T>;
  /**
   * Emits a durable event (an SDK mesh's `emit`); through `ctx.mesh` it carries the handler's
   * trace. Optional, so a mesh made only for calls still fits.
   */
  emit?(event: string, payload?: unknown, options?: NestedEmitOptions): Promise<unknown>;
}

/** What `ctx.mesh.emit()` passes on: the caller's trace in `headers`. */
export interface NestedEmitOptions {
  headers?: Record<string, string>;
  idempotencyKey?: string;
  signal?: AbortSignal;
  timeout?: number;
}

/**
 * Options of a nested call, `ctx.mesh.request()`: those of the SDK's `mesh.request()`, which
 * the agent does not import (the caller passes its mesh in); a test keeps the two the same.
 * `deadline`, `signal` and `headers` default to the incoming call's, so nested calls inherit
 * its deadline, cancellation and trace.
 */
export interface NestedRequestOptions {
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
  balance?: "queue" | "random" | "weighted" | "round-robin" | "least-loaded";
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

/** Options of {@link startAgent}. */
export interface AgentOptions {
  /**
   * NATS servers: an array or a comma-separated string. Ignored when `connection` is given.
   * @default `NATS_URL` when set, else "nats://127.0.0.1:4222"
   */
  servers?: string | string[];
  /** An existing connection to use; the agent then leaves it open on `stop()`. */
  connection?: NatsConnection;
  /**
   * NATS credentials of the connection the agent opens (ignored with `connection`): a user and
   * password, a token, a `.creds` file or an nkey seed file. Never logged.
   * @default `NATS_USER` + `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_CREDS` or `NATS_NKEY` when set
   */
  credentials?: NatsCredentials;
  /**
   * Inbox prefix of the connection the agent opens (ignored with `connection`), for NATS
   * permissions that give its user its own inboxes. Not to be confused with `inboxPrefixes`,
   * the callers' inboxes it answers.
   * @default `NATS_INBOX_PREFIX` when set, else "_INBOX"
   */
  inboxPrefix?: string;
  /** Service name: `[A-Za-z0-9_-]{1,64}`. */
  service: string;
  /** @default "0.0.0" */
  version?: string;
  /**
   * Share of traffic for weighted strategies, 0–10000; 0 takes no new weighted traffic.
   * @default 100
   */
  weight?: number;
  /**
   * The methods, by name: `{ say: async (payload, ctx) => payload }` or `{ say: { handler, scope } }`.
   * An agent needs at least one method or one event subscription.
   */
  methods?: Record<string, Handler | MethodDefinition>;
  /**
   * Event subscriptions, by event name or pattern (`order.created`, `order.*`, `order.>`): a
   * handler (durable delivery), or `{ handler, mode, concurrency, ordered, startFrom, … }`.
   */
  events?: Record<string, EventHandler | EventDefinition>;
  /**
   * Settings of `<P>_events` and `<P>_dlq` when a durable subscription has to create them (an
   * existing stream is used as it is).
   * @default 1 replica, events kept 7 days or 1 GiB, dead letters 30 days or 256 MiB
   */
  streams?: EventStreamOptions;
  /**
   * Largest event payload, in bytes, a subscription handles; a durable event beyond it is
   * dead-lettered with `PAYLOAD_TOO_LARGE`, a live one dropped.
   * @default 1048576
   */
  maxEventBytes?: number;
  /**
   * Token checking: every call then needs `Authorization: Bearer <jwt>`. `false` turns it off
   * whatever the environment says.
   * @default from `MESH_JWKS`, `MESH_ISSUER`, `MESH_AUDIENCE` when `MESH_JWKS` is set; else no auth
   */
  auth?: AgentAuthOptions | false;
  /**
   * The agent's own token, sent on its presence messages (needs `announce:<service>`).
   * @default `MESH_TOKEN` when set
   */
  token?: TokenSource;
  /**
   * Most handlers running at once; a call beyond it is answered `OVERLOADED` at once.
   * @default 256
   */
  concurrency?: number;
  /**
   * Most values one request payload may hold, counted across all nesting (map keys included).
   * Checked before decoding; more is answered `PAYLOAD_TOO_LARGE`.
   * @default 100000
   */
  maxElements?: number;
  /**
   * Most arrays/maps one request payload may nest. Checked before decoding; deeper is answered
   * `BAD_REQUEST`.
   * @default 64
   */
  maxDepth?: number;
  /**
   * Memory the requests in flight may hold, in bytes: each running call is charged its payload
   * size plus 64 bytes per value it decodes to, each call waiting for its token verification its
   * payload size plus 1 KiB. A call beyond it is answered `OVERLOADED` (or `PAYLOAD_TOO_LARGE`
   * when it alone is larger).
   * @default 67108864 (64 MiB)
   */
  maxInflightBytes?: number;
  /**
   * Longest a call may run, ms. The agent honours the caller's `Mesh-Deadline` only up to now +
   * `maxCallMs` (a call without one gets that too); at the deadline it aborts `ctx.signal`,
   * and a handler that has not settled shortly after loses its slot: the caller gets
   * `DEADLINE_EXCEEDED` and a later result is dropped.
   * @default 300000 (5 minutes)
   */
  maxCallMs?: number;
  /** @default 1000 */
  heartbeatMs?: number;
  /**
   * How long `stop()` lets in-flight handlers finish before aborting them.
   * @default 10000
   */
  drainTimeoutMs?: number;
  /**
   * Subject prefix of the mesh (`P` in `P.svc.…`), so several meshes can share one NATS account.
   * @default `MESH_PREFIX` when set, else "mesh"
   */
  prefix?: string;
  /**
   * Inbox prefixes of the callers this agent answers. A reply goes only to a subject under one
   * of them (`_INBOX.…`); requests naming any other reply subject (`$JS.…`, `$KV.…`, mesh
   * subjects, …) are dropped and counted in `agent.stats().droppedReplies`. Callers that use
   * a custom inbox prefix (`connectMesh({ inboxPrefix })`) are answered only once it is listed
   * here. A prefix may not overlap the mesh prefix.
   * @default `MESH_INBOX_PREFIXES` (comma-separated) when set, else ["_INBOX"]
   */
  inboxPrefixes?: readonly string[];
  /** Zone the instance runs in, for zone-preferring clients. */
  zone?: string;
  metadata?: Record<string, string>;
  /** Text for NATS micro `$SRV.INFO`. */
  description?: string;
  /** An SDK mesh for nested calls from handlers, exposed as `ctx.mesh`. */
  mesh?: NestedMesh;
  /**
   * An HTTP endpoint serving the agent's metrics in the Prometheus text format at
   * `http://<host>:<port>/metrics` (port 0: any free port, see `agent.metricsPort`). `false`
   * turns it off whatever the environment says.
   * @default from `MESH_METRICS_PORT` and `MESH_METRICS_HOST` when the port is set; else none
   */
  metrics?: AgentMetricsOptions | false;
  /**
   * Where the agent's server spans go: each call to a handler runs in a span that continues the
   * caller's trace.
   * @default the global TracerProvider of `@opentelemetry/api` (none registered: no spans)
   */
  tracerProvider?: TracerProvider;
  /**
   * Where the agent logs (one child with `component`, `service`, `instance`); a handler that
   * throws something other than a `MeshError` is logged at `error` with its stack.
   * @default pino JSON on stdout at `LOG_LEVEL` (default "info")
   */
  logger?: Logger;
}

/** Where the agent serves Prometheus metrics. */
export interface AgentMetricsOptions {
  /** TCP port; 0 picks a free one. */
  port: number;
  /**
   * Address to bind. Loopback by default, so metrics are not published by accident; a container
   * that Prometheus scrapes from outside binds `0.0.0.0`.
   * @default "127.0.0.1"
   */
  host?: string;
}

/** {@link AgentOptions} with every default applied and every value checked. */
export interface ResolvedAgentOptions {
  servers: string | string[] | undefined;
  connection: NatsConnection | undefined;
  /** Credentials and inbox prefix of the connection the agent opens. */
  identity: ConnectionIdentity;
  service: string;
  version: string;
  weight: number;
  methods: ReadonlyMap<string, ResolvedMethod>;
  events: readonly ResolvedEventHandler[];
  streams: Required<EventStreamOptions>;
  maxEventBytes: number;
  auth: AgentAuthOptions | undefined;
  token: TokenSource | undefined;
  concurrency: number;
  maxElements: number;
  maxDepth: number;
  maxInflightBytes: number;
  maxCallMs: number;
  heartbeatMs: number;
  drainTimeoutMs: number;
  prefix: string;
  inboxPrefixes: readonly string[];
  zone: string | undefined;
  metadata: Record<string, string>;
  description: string;
  mesh: NestedMesh | undefined;
  metrics: Required<AgentMetricsOptions> | undefined;
  tracerProvider: TracerProvider | undefined;
  logger: Logger;
}

export const AGENT_DEFAULTS = {
  version: "0.0.0",
  weight: DEFAULT_WEIGHT,
  concurrency: 256,
  maxElements: DEFAULT_DECODE_LIMITS.maxElements,
  maxDepth: DEFAULT_DECODE_LIMITS.maxDepth,
  maxInflightBytes: 64 * 1024 * 1024,
  maxCallMs: 300_000,
  heartbeatMs: 1000,
  drainTimeoutMs: 10_000,
  prefix: DEFAULT_PREFIX,
  maxEventBytes: 1024 * 1024,
} as const satisfies Partial<AgentOptions>;

function resolveMethod(service: string, name: string, definition: unknown): ResolvedMethod {
  if (typeof definition === "function")
    return { handler: definition as Handler, scope: [service, name] };
  const d = definition as MethodDefinition | null;
  if (d === null || typeof d !== "object" || typeof d.handler !== "function") {
    throw new TypeError(`method ${name} must be a function or { handler, scope? }`);
  }
  if (d.scope === undefined) return { handler: d.handler, scope: [service, name] };
  const parts = typeof d.scope === "string" ? d.scope.split(".") : [];
  if (parts.length !== 2 || !parts.every(isValidName)) {
    throw new TypeError(
      `method ${name}: scope must look like "billing.write", got ${String(d.scope)}`,
    );
  }
  return { handler: d.handler, scope: [parts[0]!, parts[1]!] };
}

function resolveAuth(auth: AgentAuthOptions | false | undefined): AgentAuthOptions | undefined {
  if (auth === undefined || auth === false) return undefined;
  checkTokenGateOptions(auth);
  if (auth.discovery !== undefined && auth.discovery !== "open" && auth.discovery !== "closed") {
    throw new TypeError('auth.discovery must be "open" or "closed"');
  }
  return { ...auth };
}

function resolveInboxPrefixes(
  prefixes: readonly string[] | undefined,
  meshPrefix: string,
): readonly string[] {
  if (prefixes === undefined) return [DEFAULT_INBOX_PREFIX];
  if (!Array.isArray(prefixes) || prefixes.length === 0 || prefixes.length > 32) {
    throw new TypeError("inboxPrefixes must be an array of 1 to 32 subject prefixes");
  }
  return Object.freeze(prefixes.map((p) => assertInboxPrefix(p, meshPrefix)));
}

const MAX = Number.MAX_SAFE_INTEGER;

function resolveMetrics(
  metrics: AgentMetricsOptions | false | undefined,
): Required<AgentMetricsOptions> | undefined {
  if (metrics === undefined || metrics === false) return undefined;
  if (metrics === null || typeof metrics !== "object") {
    throw new TypeError("metrics must be { port, host? } or false");
  }
  const host = metrics.host ?? "127.0.0.1";
  if (typeof host !== "string" || host === "")
    throw new TypeError("metrics.host must be a host name or address");
  return { port: checkInt(metrics.port, "metrics.port (MESH_METRICS_PORT)", 0, 65535), host };
}

/**
 * Resolves and checks agent options; throws `TypeError` on anything invalid. Never mutates
 * `options`. What goes into the instance record (version, weight, metadata) is checked with
 * the record itself, by `instanceRecord()`.
 */
export function resolveAgentOptions(options: AgentOptions): ResolvedAgentOptions {
  if (options === null || typeof options !== "object")
    throw new TypeError("startAgent needs options");
  refuseMeterProvider(options);
  // MESH_PREFIX is read only when no prefix is given: a bad value there cannot fail a caller
  // who set the prefix in code.
  const o = withDefaults(AGENT_DEFAULTS, {
    ...options,
    prefix: options.prefix ?? prefixFromEnv(),
    heartbeatMs: options.heartbeatMs ?? heartbeatMsFromEnv(),
  });
  assertName(o.service, "service");
  assertPrefix(o.prefix);
  if (o.zone !== undefined && !isValidName(o.zone))
    throw new TypeError("zone must be a valid name");
  if (o.methods !== undefined && (o.methods === null || typeof o.methods !== "object"))
    throw new TypeError("methods must be an object");
  const methods = new Map<string, ResolvedMethod>();
  for (const [name, definition] of Object.entries(o.methods ?? {})) {
    assertName(name, "method");
    methods.set(name, resolveMethod(o.service, name, definition));
  }
  const events = resolveEvents(o.events);
  if (methods.size === 0 && events.length === 0) {
    throw new TypeError("an agent needs at least one method or event subscription");
  }
  if (methods.size > PresenceLimits.maxMethods) {
    throw new TypeError(`an agent may host at most ${PresenceLimits.maxMethods} methods`);
  }
  return {
    servers: o.servers ?? serversFromEnv(),
    connection: o.connection,
    identity: resolveIdentity(o, o.prefix),
    service: o.service,
    version: o.version,
    weight: o.weight,
    methods,
    events,
    streams: resolveEventStreamOptions(o.streams),
    maxEventBytes: checkInt(o.maxEventBytes, "maxEventBytes", 1, 64 * 1024 * 1024),
    auth: resolveAuth(o.auth === undefined ? authFromEnv() : o.auth),
    token: o.token ?? tokenFromEnv(),
    concurrency: checkInt(o.concurrency, "concurrency", 1, MAX),
    maxElements: checkInt(o.maxElements, "maxElements", 1, MAX),
    maxDepth: checkInt(o.maxDepth, "maxDepth", 1, 10_000),
    maxInflightBytes: checkInt(o.maxInflightBytes, "maxInflightBytes", 1, MAX),
    maxCallMs: checkInt(o.maxCallMs, "maxCallMs", 1, 86_400_000),
    heartbeatMs: checkInt(o.heartbeatMs, "heartbeatMs", 1, 3_600_000),
    drainTimeoutMs: checkInt(o.drainTimeoutMs, "drainTimeoutMs", 1, MAX),
    prefix: o.prefix,
    inboxPrefixes: resolveInboxPrefixes(o.inboxPrefixes ?? inboxPrefixesFromEnv(), o.prefix),
    zone: o.zone,
    metadata: { ...o.metadata },
    description: o.description ?? "",
    mesh: o.mesh,
    metrics: resolveMetrics(o.metrics === undefined ? metricsFromEnv() : o.metrics),
    tracerProvider: checkProvider(o.tracerProvider, "getTracer", "tracerProvider"),
    logger: o.logger ?? pino({ level: logLevelFromEnv() }),
  };
}
