import { type NatsConnection, nuid, type Subscription } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import {
  type InstanceRecord,
  type InstanceStatus,
  MeshError,
  QUEUE_GROUP,
  subjects,
} from "@natsmesh/protocol";
import {
  type ConnectionFollower,
  connectionOptions,
  followConnection,
  MetricSet,
  meshMetrics,
  ReplySubjectRule,
  ThrottledLog,
  type TokenProvider,
  TracerSource,
  tokenProvider,
  toMeshError,
} from "@natsmesh/protocol/internal";
import type { Logger } from "pino";
import type { AgentStats } from "./agent-stats.js";
import { Announcer } from "./announcer.js";
import { AgentAuth } from "./auth.js";
import { Discovery } from "./discovery.js";
import { Dispatcher } from "./dispatcher.js";
import { EventHost } from "./events/event-host.js";
import { EventMetrics } from "./events/event-metrics.js";
import { InflightBudget } from "./inflight-budget.js";
import { checkedRecord, instanceRecord } from "./instance-record.js";
import { MetricsEndpoint } from "./metrics-endpoint.js";
import { type AgentOptions, type ResolvedAgentOptions, resolveAgentOptions } from "./options.js";
import { PresenceCheck } from "./presence-check.js";
import { ReplyGuard } from "./reply-guard.js";
import { Saturation } from "./saturation.js";
import { AGENT_METER, AGENT_TRACER, ServerMetrics } from "./server-metrics.js";

/** What `agent.update()` may change; the record is re-announced. */
export interface AgentUpdate {
  weight?: number;
  /** `"draining"` takes the instance out of presence strategies; `"ready"` puts it back. */
  status?: "ready" | "draining";
  metadata?: Record<string, string>;
}

/** A running agent. */
export interface Agent extends AsyncDisposable {
  /** Instance id: a NUID, unique per start. */
  readonly id: string;
  /** The current presence record (a copy). */
  readonly record: InstanceRecord;
  /** The NATS connection the agent uses. */
  readonly connection: NatsConnection;
  /** Port of the Prometheus endpoint (`metrics` option); `undefined` when it has none. */
  readonly metricsPort: number | undefined;
  /** Counters of refused and abandoned work. */
  stats(): AgentStats;
  /** Changes weight, status or metadata and re-announces the record. */
  update(changes: AgentUpdate): Promise<void>;
  /**
   * Drains: announces `draining`, stops taking new calls, lets in-flight ones finish up to
   * `drainTimeoutMs` (then aborts them with `UNAVAILABLE`), announces `down` and closes.
   * Idempotent: every call returns the same promise.
   */
  stop(): Promise<void>;
}

class AgentImpl implements Agent {
  readonly #o: ResolvedAgentOptions;
  readonly #nc: NatsConnection;
  readonly #ownsConnection: boolean;
  #record: InstanceRecord;
  readonly #dispatcher: Dispatcher;
  readonly #announcer: Announcer;
  readonly #discovery: Discovery;
  readonly #presenceCheck: PresenceCheck;
  readonly #replies: ReplyGuard;
  readonly #budget: InflightBudget;
  readonly #saturation: Saturation;
  readonly #metricSet: MetricSet;
  readonly #metrics: ServerMetrics;
  readonly #eventMetrics: EventMetrics;
  readonly #endpoint: MetricsEndpoint | undefined;
  readonly #tracing: TracerSource;
  /** The status an operator chose (`update()`) or `stop()` set; the record may say more. */
  #baseStatus: "ready" | "draining" = "ready";
  readonly #subs: Subscription[] = [];
  readonly #status: ConnectionFollower;
  #stopping: Promise<void> | undefined;
  #events: EventHost | undefined;

  readonly #auth: AgentAuth | undefined;
  readonly #token: TokenProvider | undefined;

  constructor(
    o: ResolvedAgentOptions,
    nc: NatsConnection,
    ownsConnection: boolean,
    auth: AgentAuth | undefined,
    record: InstanceRecord,
    log: Logger,
    metricSet: MetricSet,
    endpoint: MetricsEndpoint | undefined,
  ) {
    this.#o = o;
    this.#metricSet = metricSet;
    this.#endpoint = endpoint;
    this.#nc = nc;
    this.#ownsConnection = ownsConnection;
    this.#auth = auth;
    const s = subjects(o.prefix);
    this.#record = record;
    const { id } = record;
    this.#token =
      o.token === undefined
        ? undefined
        : tokenProvider(o.token, (err) =>
            log.error({ err }, "the agent's token could not be fetched"),
          );
    const tracing = new TracerSource(AGENT_TRACER, o.tracerProvider);
    this.#tracing = tracing;
    const scope = { service: o.service, log, mesh: o.mesh, tracing, record: () => this.#record };
    const limited = new ThrottledLog(log);
    this.#budget = new InflightBudget(o.maxInflightBytes);
    this.#saturation = new Saturation(o.heartbeatMs, () => this.#refreshStatus());
    // Without a key set the instance cannot serve callers: its record says "unready" until
    // keys arrive, and durable consumers pull again once they have.
    auth?.onReadiness(() => {
      this.#refreshStatus();
      if (auth.ready) this.#events?.resume();
    });
    this.#refreshStatus();
    this.#replies = new ReplyGuard(new ReplySubjectRule(o.inboxPrefixes), limited);
    this.#metrics = new ServerMetrics(
      metricSet,
      o.service,
      o.methods.keys(),
      () => this.#dispatcher.active,
    );
    this.#eventMetrics = new EventMetrics(metricSet, o.service);
    // Read with every other agent and mesh of the process by natsmeshMetricProducer().
    meshMetrics.add(metricSet);
    this.#dispatcher = new Dispatcher(scope, {
      connection: nc,
      methods: o.methods,
      concurrency: o.concurrency,
      limits: { maxElements: o.maxElements, maxDepth: o.maxDepth },
      budget: this.#budget,
      maxCallMs: o.maxCallMs,
      auth,
      replies: this.#replies,
      limitedLog: limited,
      onFull: () => this.#saturation.full(),
      metrics: this.#metrics,
    });
    this.#announcer = new Announcer({
      connection: nc,
      subjects: s,
      heartbeatMs: o.heartbeatMs,
      record: () => this.#record,
      inflight: () => this.#dispatcher.active,
      limit: o.concurrency,
      beforeHeartbeat: () => {
        this.#saturation.tick(
          this.#dispatcher.active / o.concurrency,
          this.#budget.bytes / o.maxInflightBytes,
        );
        auth?.remind();
      },
      token: () => this.#token?.current(),
      log,
    });
    this.#discovery = new Discovery({
      connection: nc,
      subjects: s,
      record: () => this.#record,
      stats: this.#dispatcher.stats,
      description: o.description,
      auth,
      startedAt: new Date(this.#record.startedAt).toISOString(),
      replies: this.#replies,
      counters: () => this.stats(),
      log,
    });
    const callback = this.#dispatcher.onMessage;
    this.#subs.push(
      nc.subscribe(s.serviceWildcard(o.service), { queue: QUEUE_GROUP, callback }),
      nc.subscribe(s.instanceWildcard(o.service, id), { callback }),
    );
    if (o.auth?.discovery !== "closed") this.#discovery.start();
    this.#announcer.start();
    this.#presenceCheck = new PresenceCheck({
      connection: nc,
      prefix: o.prefix,
      heartbeatMs: o.heartbeatMs,
      record: () => this.#record,
      log,
    });
    this.#presenceCheck.start();
    // Ended by stop(): on a shared connection it would outlive the agent.
    this.#status = followConnection(nc, {
      disconnect: (server) => log.warn({ server }, "disconnected from NATS"),
      reconnect: (server) => {
        if (this.#stopping !== undefined) return;
        // The registry may have evicted us meanwhile: announce again at once.
        log.info({ server }, "reconnected to NATS");
        this.#announcer.up();
        this.#presenceCheck.start();
      },
    });
  }

  /**
   * Puts the status the agent is in into its record and announces it when it changed:
   * draining wins, then unready (no key set to verify tokens with), then saturated; ready
   * otherwise.
   */
  #refreshStatus(): void {
    const status: InstanceStatus =
      this.#baseStatus === "draining"
        ? "draining"
        : this.#auth?.ready === false
          ? "unready"
          : this.#saturation.saturated
            ? "saturated"
            : "ready";
    if (status === this.#record.status) return;
    this.#record = { ...this.#record, status };
    // The constructor's own first announcement carries the status; later changes announce here.
    if (this.#announcer !== undefined) this.#announcer.up();
  }

  /** Starts the event subscriptions; the agent stops again when they cannot start. */
  async startEvents(log: Logger): Promise<void> {
    const o = this.#o;
    if (o.events.length === 0) return;
    this.#events = await EventHost.start({
      connection: this.#nc,
      prefix: o.prefix,
      scope: {
        service: o.service,
        log,
        metrics: this.#eventMetrics,
        tracing: this.#tracing,
        mesh: o.mesh,
        record: () => this.#record,
      },
      handlers: o.events,
      auth: this.#auth,
      streams: o.streams,
      maxBytes: o.maxEventBytes,
      limits: { maxElements: o.maxElements, maxDepth: o.maxDepth },
    });
  }

  get id(): string {
    return this.#record.id;
  }

  get record(): InstanceRecord {
    return structuredClone(this.#record);
  }

  get connection(): NatsConnection {
    return this.#nc;
  }

  get metricsPort(): number | undefined {
    return this.#endpoint?.port;
  }

  stats(): AgentStats {
    return {
      inflight: this.#dispatcher.active,
      inflightBytes: this.#budget.bytes,
      droppedReplies: this.#replies.droppedReplies,
      noReply: this.#replies.noReply,
      runaway: this.#dispatcher.runaway,
      rejectedConcurrency: this.#dispatcher.rejectedConcurrency,
      rejectedMemory: this.#dispatcher.rejectedMemory,
    };
  }

  async update(changes: AgentUpdate): Promise<void> {
    if (this.#stopping !== undefined) throw new TypeError("the agent is stopping");
    if (
      changes.status !== undefined &&
      changes.status !== "ready" &&
      changes.status !== "draining"
    ) {
      throw new TypeError(`status must be "ready" or "draining", got ${String(changes.status)}`);
    }
    const next: InstanceRecord = {
      ...this.#record,
      ...(changes.weight === undefined ? {} : { weight: changes.weight }),
      ...(changes.metadata === undefined ? {} : { metadata: { ...changes.metadata } }),
    };
    this.#record = checkedRecord(next, this.#o.prefix, "agent.update");
    if (changes.status !== undefined) this.#baseStatus = changes.status;
    const status = this.#record.status;
    this.#refreshStatus();
    // refreshStatus() announced a changed status; a change of weight or metadata alone is announced here.
    if (this.#record.status === status) this.#announcer.up();
    await this.#nc.flush();
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#presenceCheck.stop();
    this.#baseStatus = "draining";
    this.#refreshStatus();
    this.#dispatcher.stopAccepting();
    // drain() lets messages already delivered to us be handled, then unsubscribes: new calls
    // go to other instances (queue) or get "no responders" (direct), which callers retry.
    await Promise.allSettled(this.#subs.map((sub) => sub.drain()));
    await Promise.all([
      this.#dispatcher.drain(this.#o.drainTimeoutMs),
      this.#events?.stop(this.#o.drainTimeoutMs),
    ]);
    this.#discovery.stop();
    this.#announcer.stop("stopped");
    this.#auth?.stop();
    this.#token?.stop();
    this.#status.stop();
    await this.#endpoint?.close();
    // Its counts stay in the process's metrics: cumulative numbers must not go backwards.
    meshMetrics.retire(this.#metricSet);
    if (this.#ownsConnection) {
      await this.#nc.drain().catch(() => this.#nc.close());
    } else if (!this.#nc.isClosed()) {
      await this.#nc.flush().catch(() => undefined);
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/**
 * Starts an agent: connects (or uses `connection`), subscribes `P.svc.<service>.*` in queue
 * group `q` and `P.inst.<service>.<id>.*`, answers NATS micro discovery and announces presence.
 * Throws `TypeError` on invalid options before connecting.
 */
export async function startAgent(options: AgentOptions): Promise<Agent> {
  const o = resolveAgentOptions(options);
  const id = nuid.next();
  const record = instanceRecord(o, id);
  const log = o.logger.child({ component: "agent", service: o.service, instance: id });
  const metricSet = new MetricSet(AGENT_METER);
  // Bound first: a taken port fails the start before anything is announced.
  const endpoint =
    o.metrics === undefined
      ? undefined
      : await MetricsEndpoint.listen(
          o.metrics,
          metricSet,
          { service: o.service, version: o.version, id },
          log,
        );
  let nc: NatsConnection | undefined;
  let auth: AgentAuth | undefined;
  try {
    nc =
      o.connection ??
      (await connect(connectionOptions(o.servers, `natsmesh-agent-${o.service}`, o.identity)));
    auth = o.auth === undefined ? undefined : await AgentAuth.start(o.auth, nc, o.prefix, log);
  } catch (err) {
    if (o.connection === undefined) await nc?.close();
    await endpoint?.close();
    throw err;
  }
  const agent = new AgentImpl(
    o,
    nc,
    o.connection === undefined,
    auth,
    record,
    log,
    metricSet,
    endpoint,
  );
  try {
    await agent.startEvents(log);
  } catch (err) {
    await agent.stop();
    throw toMeshError(err).code === "INTERNAL"
      ? new MeshError("UNAVAILABLE", "the agent's event subscriptions could not start", {
          cause: err,
        })
      : err;
  }
  await nc.flush();
  return agent;
}
