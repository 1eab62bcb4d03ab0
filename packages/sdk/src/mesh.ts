import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { type InstanceRecord, MeshError, subjects } from "@natsmesh/protocol";
import {
  assertName,
  connectionOptions,
  errorType,
  inboxPrefixOf,
  MetricSet,
  meshMetrics,
  TracerSource,
  tokenProvider,
} from "@natsmesh/protocol/internal";
import type { Logger } from "pino";
import { Balancer } from "./balancer.js";
import { type CallScope, call } from "./call.js";
import { SDK_TRACER } from "./call-trace.js";
import { CallTracker } from "./call-tracker.js";
import { ClientMetrics, SDK_METER } from "./client-metrics.js";
import type { BroadcastOptions, EmitOptions, EmitResult } from "./events/emit-options.js";
import { Emitter } from "./events/emitter.js";
import { Link } from "./link.js";
import {
  type MeshOptions,
  type RequestOptions,
  type ResolvedMeshOptions,
  resolveMeshOptions,
} from "./options.js";
import { PresenceCache, type PresenceEvent, type PresenceStats } from "./presence-cache.js";
import { type ReadyOptions, resolveReadyOptions } from "./presence-ready.js";
import { QueueSubjects } from "./queue-subjects.js";
import { ReplyMux } from "./reply-mux.js";
import { MeshTokenLines } from "./token-lines.js";

/** Options of `mesh.watch()`. */
export interface WatchOptions {
  /** Ends the iteration. */
  signal?: AbortSignal;
}

/** Most events a `watch()` iterator buffers for a reader that falls behind. */
const WATCH_BUFFER = 100_000;

/** A client of the mesh. */
export interface Mesh extends AsyncDisposable {
  /** The NATS connection the mesh uses. */
  readonly connection: NatsConnection;
  /**
   * Calls `<service>.<method>` and resolves with the decoded reply. Rejects with a `MeshError`
   * (the handler's own, or `UNAVAILABLE`, `DEADLINE_EXCEEDED`, …), or the signal's reason.
   */
  request<T = unknown>(
    service: string,
    method: string,
    payload?: unknown,
    options?: RequestOptions,
  ): Promise<T>;
  /**
   * Emits a durable event: publishes it on `P.evt.<event>` and resolves once the `<P>_events`
   * stream stored it (creating the streams on first use). Rejects with `UNAVAILABLE` when no
   * stream can store it, `PAYLOAD_TOO_LARGE`, `FORBIDDEN` when the mesh's token lacks
   * `emit:<event>`, `DEADLINE_EXCEEDED` at the timeout. Emits not awaited one by one pipeline.
   */
  emit(event: string, payload?: unknown, options?: EmitOptions): Promise<EmitResult>;
  /**
   * Publishes an event without waiting for anyone: every live `broadcast` subscriber and one
   * instance per `group` subscription get it; nothing is acknowledged. Throws `TypeError` on an
   * invalid name, `MeshError` `PAYLOAD_TOO_LARGE` or `FORBIDDEN` at once.
   */
  broadcast(event: string, payload?: unknown, options?: BroadcastOptions): void;
  /**
   * Resolves once the presence view has settled: the first snapshot of `<P>_presence` is in
   * (an empty bucket counts), or the bucket does not exist (no registry has run for the
   * prefix: there is nothing to wait for, and `instances()` stays empty until one does). With
   * `service`, also once the view holds a `ready` instance of it. Then `instances()` shows what
   * the bucket held. Concurrent calls share one wait.
   *
   * Rejects with `DEADLINE_EXCEEDED` after `timeout` (default: the mesh's `timeoutMs`), or with
   * `UNAVAILABLE` when the bucket could not be read meanwhile (no JetStream, no permission) or
   * the mesh is closed (or closes first); with the signal's reason when it aborts. Throws
   * `TypeError` on invalid options and on a mesh connected with `presence: false`.
   */
  ready(options?: ReadyOptions): Promise<void>;
  /** The instances of `service` (or of every service) in the presence view. */
  instances(service?: string): InstanceRecord[];
  /**
   * Presence changes of `service` (or of every service): first an `up` for each instance
   * already known, then `up`, `update` and `down` as they happen. Ends when the mesh closes,
   * the signal aborts or the loop breaks.
   */
  watch(service?: string, options?: WatchOptions): AsyncIterable<PresenceEvent>;
  /**
   * What the presence view holds, and the records of `<P>_presence` it left out since start:
   * invalid, too large, unsigned or wrongly signed (with `presence.keys`), or over a quota.
   * Throws `TypeError` with `presence: false`.
   */
  presenceStats(): PresenceStats;
  /**
   * Lets pending calls finish up to `closeTimeoutMs`, rejects the rest with `UNAVAILABLE` and
   * closes the connection if the mesh opened it. Idempotent: every call returns the same promise.
   */
  close(): Promise<void>;
}

class MeshImpl implements Mesh {
  readonly #scope: CallScope;
  readonly #ownsConnection: boolean;
  readonly #watchers = new Set<() => void>();
  readonly #emitter: Emitter;
  #closing: Promise<void> | undefined;

  constructor(
    o: ResolvedMeshOptions,
    nc: NatsConnection,
    ownsConnection: boolean,
    log: Logger,
    presence: PresenceCache | undefined,
  ) {
    const balancer = new Balancer();
    presence?.subscribe((event) => {
      if (event.type === "down") balancer.forget(event.instance.id);
    });
    const calls = new CallTracker();
    const metricSet = new MetricSet(SDK_METER);
    // Read with every other mesh and agent of the process by natsmeshMetricProducer().
    meshMetrics.add(metricSet);
    const meshSubjects = subjects(o.prefix);
    this.#scope = {
      nc,
      mux: new ReplyMux(nc, inboxPrefixOf(nc)),
      link: new Link(nc, log),
      subjects: meshSubjects,
      queueSubjects: new QueueSubjects(meshSubjects),
      options: o,
      presence,
      balancer,
      calls,
      metricSet,
      metrics: new ClientMetrics(metricSet, () => calls.active),
      tracing: new TracerSource(SDK_TRACER, o.tracerProvider),
      tokenLines: new MeshTokenLines(),
      token:
        o.token === undefined
          ? undefined
          : tokenProvider(o.token, (err) =>
              log.error({ err }, "the mesh's token could not be fetched"),
            ),
    };
    this.#ownsConnection = ownsConnection;
    this.#emitter = new Emitter(this.#scope, log);
  }

  get connection(): NatsConnection {
    return this.#scope.nc;
  }

  request<T = unknown>(
    service: string,
    method: string,
    payload?: unknown,
    options?: RequestOptions,
  ): Promise<T> {
    if (this.#closing !== undefined) {
      return Promise.reject(new MeshError("UNAVAILABLE", "the mesh client is closed"));
    }
    return call(this.#scope, service, method, payload, options) as Promise<T>;
  }

  emit(event: string, payload?: unknown, options?: EmitOptions): Promise<EmitResult> {
    if (this.#closing !== undefined) {
      return Promise.reject(new MeshError("UNAVAILABLE", "the mesh client is closed"));
    }
    const { calls, metrics } = this.#scope;
    calls.begin();
    return this.#emitter.emit(event, payload, options).then(
      (result) => {
        calls.end();
        metrics.published(event, "durable", undefined);
        return result;
      },
      (err: unknown) => {
        calls.end();
        metrics.published(event, "durable", errorType(err));
        throw err;
      },
    );
  }

  broadcast(event: string, payload?: unknown, options?: BroadcastOptions): void {
    if (this.#closing !== undefined) {
      throw new MeshError("UNAVAILABLE", "the mesh client is closed");
    }
    this.#emitter.broadcast(event, payload, options);
  }

  ready(options: ReadyOptions = {}): Promise<void> {
    const presence = this.#presence("ready() waits for the presence view");
    const wait = resolveReadyOptions(options, this.#scope.options.timeoutMs);
    return presence.settled(wait);
  }

  instances(service?: string): InstanceRecord[] {
    if (service !== undefined) assertName(service, "service");
    return this.#presence().instances(service);
  }

  presenceStats(): PresenceStats {
    return this.#presence().stats();
  }

  watch(service?: string, options: WatchOptions = {}): AsyncIterable<PresenceEvent> {
    if (service !== undefined) assertName(service, "service");
    const presence = this.#presence();
    return this.#watch(presence, service, options.signal);
  }

  async *#watch(
    presence: PresenceCache,
    service: string | undefined,
    signal: AbortSignal | undefined,
  ) {
    const queue: PresenceEvent[] = [];
    let wake: (() => void) | undefined;
    let overflow = false;
    const notify = () => wake?.();
    // Subscribing and copying the current view happen in one synchronous step: nothing is missed.
    const unsubscribe = presence.subscribe((event) => {
      if (service !== undefined && event.instance.service !== service) return;
      if (queue.length >= WATCH_BUFFER) overflow = true;
      else queue.push(event);
      notify();
    });
    for (const instance of presence.instances(service)) queue.push({ type: "up", instance });
    this.#watchers.add(notify);
    signal?.addEventListener("abort", notify, { once: true });
    try {
      while (this.#closing === undefined && signal?.aborted !== true) {
        if (overflow)
          throw new MeshError(
            "UNAVAILABLE",
            `watch() reader fell more than ${WATCH_BUFFER} events behind`,
          );
        const event = queue.shift();
        if (event !== undefined) {
          yield event;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      unsubscribe();
      this.#watchers.delete(notify);
      signal?.removeEventListener("abort", notify);
    }
  }

  #presence(what?: string): PresenceCache {
    const { presence } = this.#scope;
    if (presence === undefined) {
      const why = "this mesh was connected with presence: false";
      throw new TypeError(what === undefined ? why : `${what}, but ${why}`);
    }
    return presence;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    for (const wake of this.#watchers) wake();
    const { calls, mux, nc, options, presence } = this.#scope;
    presence?.closeWaits();
    await calls.idle(options.closeTimeoutMs);
    presence?.stop();
    // Its counts stay in the process's metrics: cumulative numbers must not go backwards.
    meshMetrics.retire(this.#scope.metricSet);
    this.#scope.link.stop();
    this.#scope.token?.stop();
    if (this.#ownsConnection && !nc.isClosed()) await nc.drain().catch(() => nc.close());
    // Last, with nothing awaited after it: whoever awaits close() holds its pending calls'
    // promises with handlers attached by the time they reject.
    mux.close(new MeshError("UNAVAILABLE", "the mesh client closed before the reply came"));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Connects to the mesh (or uses `connection`). Throws `TypeError` on invalid options before
 * connecting; rejects when NATS cannot be reached.
 */
export async function connectMesh(options: MeshOptions = {}): Promise<Mesh> {
  const o = resolveMeshOptions(options);
  const nc =
    o.connection ??
    (await connect({
      ...connectionOptions(o.servers, "natsmesh-sdk", o.identity),
    }));
  const owns = o.connection === undefined;
  const log = o.logger.child({ component: "sdk" });
  let presence: PresenceCache | undefined;
  try {
    presence =
      o.presence === undefined
        ? undefined
        : await PresenceCache.open(nc, o.prefix, log, o.presence);
  } catch (err) {
    if (owns) await nc.close().catch(() => undefined);
    throw err;
  }
  const mesh = new MeshImpl(o, nc, owns, log, presence);
  await nc.flush();
  return mesh;
}
