import { type NatsConnection, nuid } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { createDashboard, PresenceFeed } from "@natsmesh/dashboard";
import { type InstanceRecord, subjects } from "@natsmesh/protocol";
import {
  type ConnectionFollower,
  connectionOptions,
  followConnection,
  startTokenGate,
  ThrottledLog,
  type TokenGate,
  withTimeout,
} from "@natsmesh/protocol/internal";
import type { Logger } from "pino";
import { BucketGuard } from "./bucket-guard.js";
import { ensureBucket, openBuckets, type RegistryBuckets } from "./buckets.js";
import { EventMetrics } from "./event-metrics.js";
import { HttpApi, type HttpApiSource } from "./http-api.js";
import { InstanceTable } from "./instance-table.js";
import { KvMirror } from "./kv-mirror.js";
import { LeaderLease, leaseStepMs } from "./leader-lease.js";
import { RegistryMetrics } from "./metrics.js";
import {
  type RegistryOptions,
  type ResolvedRegistryOptions,
  resolveRegistryOptions,
} from "./options.js";
import { publishPresenceKey } from "./presence-key-publisher.js";
import { PresenceTracker } from "./presence-tracker.js";
import { Reconciler } from "./reconciler.js";
import { Counters, type RegistryStats } from "./stats.js";
import { SyncPublisher } from "./sync-publisher.js";

/** Bound on waiting for presence writes in flight, and on draining the connection, in stop(). */
const STOP_TIMEOUT_MS = 2000;
/** Bound on the first read of the presence bucket in startRegistry(). */
const START_TIMEOUT_MS = 10_000;

/** A running registry. */
export interface Registry extends AsyncDisposable {
  /** Registry id: a NUID, new per start; the `id` in the `leader` key while it leads. */
  readonly id: string;
  /** Whether this registry holds the leader lease, and so is the one writing presence. */
  readonly isLeader: boolean;
  /** Counters since start (a snapshot). */
  readonly stats: RegistryStats;
  /** The bound HTTP port (the real one when `http.port` was 0); undefined without `http`. */
  readonly httpPort: number | undefined;
  /** The NATS connection the registry uses. */
  readonly connection: NatsConnection;
  /** Copies of the records of every live instance, from memory. */
  instances(): InstanceRecord[];
  /**
   * Stops listening, finishes presence writes in flight, releases the lease (so a follower
   * takes over at once), closes the HTTP endpoint and, if it opened it, the connection.
   * Idempotent: every call returns the same promise.
   */
  stop(): Promise<void>;
}

class RegistryImpl implements Registry {
  readonly id = nuid.next();
  readonly #o: ResolvedRegistryOptions;
  readonly #nc: NatsConnection;
  readonly #ownsConnection: boolean;
  readonly #log: Logger;
  readonly #table: InstanceTable;
  readonly #counters = new Counters();
  readonly #tracker: PresenceTracker;
  readonly #mirror: KvMirror;
  readonly #lease: LeaderLease;
  readonly #sync: SyncPublisher;
  readonly #reconciler: Reconciler;
  readonly #guard: BucketGuard;
  readonly #buckets: RegistryBuckets;
  readonly #sweepMs: number;
  /** Since when this registry has heard presence without a break (start, or last reconnect). */
  #listeningSince = performance.now();
  #http: HttpApi | undefined;
  #events: EventMetrics | undefined;
  #metrics: RegistryMetrics | undefined;
  /** The live set as the dashboard sees it; only with the dashboard on. */
  readonly #feed: PresenceFeed | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  #lastSweep = 0;
  #status: ConnectionFollower | undefined;
  #connected = true;
  #leading: Promise<void> = Promise.resolve();
  #stopping: Promise<void> | undefined;

  readonly #gate: TokenGate | undefined;

  constructor(
    o: ResolvedRegistryOptions,
    nc: NatsConnection,
    owns: boolean,
    b: RegistryBuckets,
    gate: TokenGate | undefined,
  ) {
    this.#o = o;
    this.#gate = gate;
    this.#nc = nc;
    this.#ownsConnection = owns;
    this.#buckets = b;
    this.#log = o.logger.child({ component: "registry", registry: this.id, prefix: o.prefix });
    const signer = o.signer;
    this.#table = new InstanceTable({
      quotas: o.quotas,
      ...(signer === undefined ? {} : { encode: (key, record) => signer.signedValue(key, record) }),
    });
    this.#sweepMs = Math.max(10, Math.floor(o.heartbeatTimeoutMs / 3));
    this.#feed =
      o.http !== undefined && o.http.dashboard !== false ? new PresenceFeed() : undefined;
    const s = subjects(o.prefix);
    const log = this.#log;
    const counters = this.#counters;
    this.#sync = new SyncPublisher({ connection: nc, subject: s.presenceSync(), counters, log });
    this.#lease = new LeaderLease({
      kv: b.registry,
      id: this.id,
      leaseMs: o.leaseMs,
      log,
      onChange: (leader) => this.#onLeadership(leader),
      recreate: async () => {
        await ensureBucket(nc, "registry", o.prefix, o.replicas);
      },
    });
    const throttled = new ThrottledLog(log);
    const settled = () => this.#settled();
    this.#mirror = new KvMirror({
      kv: b.presence,
      table: this.#table,
      counters,
      log,
      throttled,
      canWrite: () => this.#lease.isLeader,
      settled,
    });
    this.#guard = new BucketGuard({
      kv: b.presence,
      mirror: this.#mirror,
      counters,
      log,
      settled,
      retryMs: this.#sweepMs,
      recreate: async () => {
        await ensureBucket(nc, "presence", o.prefix, o.replicas);
      },
    });
    this.#reconciler = new Reconciler({
      mirror: this.#mirror,
      sync: this.#sync,
      table: this.#table,
      heartbeatTimeoutMs: o.heartbeatTimeoutMs,
      retryMs: this.#sweepMs,
      log,
    });
    this.#tracker = new PresenceTracker({
      connection: nc,
      subjects: s,
      table: this.#table,
      counters,
      log,
      changed: (key) => this.#changed(key),
      unknown: () => this.#sync.request(),
      gate,
    });
  }

  get isLeader(): boolean {
    return this.#lease.isLeader;
  }

  get stats(): RegistryStats {
    return this.#counters.snapshot(this.#table.size);
  }

  get httpPort(): number | undefined {
    return this.#http?.port;
  }

  get connection(): NatsConnection {
    return this.#nc;
  }

  instances(): InstanceRecord[] {
    return Array.from(this.#table.values(), (e) => structuredClone(e.record));
  }

  async start(): Promise<void> {
    // Listening comes first, so the live set is known before this registry can lead.
    this.#tracker.start();
    await this.#nc.flush();
    this.#followConnection();
    this.#lastSweep = performance.now();
    this.#sweepTimer = setInterval(() => this.#sweep(), this.#sweepMs);
    this.#sweepTimer.unref();
    await this.#lease.start();
    // A registry that leads from the start writes from the start: wait until it knows the bucket.
    if (this.isLeader) {
      await withTimeout(this.#leading, START_TIMEOUT_MS, "reading the presence bucket").catch(
        (err) => this.#log.warn({ err }, "presence bucket not read yet; continuing"),
      );
    }
    const http = this.#o.http;
    if (http !== undefined) {
      // Only a registry that serves /metrics reads the event streams.
      this.#events = new EventMetrics(this.#nc, this.#o.prefix, this.#log);
      this.#events.start();
      const events = this.#events;
      this.#metrics = new RegistryMetrics(
        {
          stats: () => this.stats,
          instances: () => Array.from(this.#table.values(), (e) => e.record),
          leader: () => this.isLeader,
          events: () => events.overview,
        },
        this.id,
      );
      const dashboard =
        http.dashboard === false || this.#feed === undefined
          ? undefined
          : createDashboard({
              ...http.dashboard,
              connection: this.#nc,
              presence: this.#feed,
              logger: this.#log.child({ component: "dashboard" }),
            });
      this.#http = await HttpApi.listen(
        http.host,
        http.port,
        this.#httpSource(),
        dashboard,
        this.#log,
      ).catch(async (err) => {
        await dashboard?.close();
        throw err;
      });
    }
    if (this.#gate !== undefined && this.#o.signer === undefined) {
      this.#log.warn(
        "auth is on but records are unsigned (auth.unsignedPresence, MESH_UNSIGNED_PRESENCE): SDKs cannot tell them from forged ones; set auth.signingKey (MESH_SIGNING_KEY) instead",
      );
    }
    this.#log.info(
      { leader: this.isLeader, signingKey: this.#o.signer?.kid, quotas: this.#o.quotas },
      "registry started",
    );
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #stop(): Promise<void> {
    clearInterval(this.#sweepTimer);
    this.#tracker.stop();
    this.#gate?.stop();
    this.#reconciler.abort();
    this.#guard.stop();
    this.#status?.stop();
    this.#events?.stop();
    // Writes in flight finish while the lease is still ours, so none lands after a successor's.
    await withTimeout(this.#mirror.whenIdle(), STOP_TIMEOUT_MS, "presence writes").catch(
      () => undefined,
    );
    await this.#lease.stop();
    await this.#http?.close();
    await this.#metrics?.stop();
    if (this.#ownsConnection && !this.#nc.isClosed()) {
      await withTimeout(this.#nc.drain(), STOP_TIMEOUT_MS, "draining").catch(() =>
        this.#nc.close(),
      );
    }
    this.#log.info("registry stopped");
  }

  /** An instance's record appeared, changed or went: KV may need a write, the dashboard news. */
  #changed(key: string): void {
    this.#mirror.mark(key);
    this.#feed?.set(key, this.#table.get(key)?.record);
  }

  #onLeadership(leader: boolean): void {
    if (leader) {
      this.#counters.leaderTerms++;
      this.#log.info("took the lead");
      this.#publishPresenceKey();
      // The watch opens before the bucket is read, so no change falls between the two.
      this.#leading = this.#guard.start().then(() => this.#reconciler.start());
      return;
    }
    this.#counters.leaderLosses++;
    this.#reconciler.abort();
    this.#guard.stop();
    this.#mirror.reset();
    this.#log.info("stepped down");
  }

  /** A signing leader makes its public key known to `presence.keys: "kv"` readers. */
  #publishPresenceKey(): void {
    const signer = this.#o.signer;
    if (signer === undefined) return;
    publishPresenceKey(this.#buckets.registry, signer).then(
      () => this.#log.debug({ kid: signer.kid }, "presence key published"),
      (err) =>
        this.#log.warn(
          { err, kid: signer.kid },
          'could not publish the presence key (the "presence-jwks" key of the registry bucket); SDKs reading it ("kv") refuse this registry\'s records',
        ),
    );
  }

  #sweep(): void {
    const now = performance.now();
    const late = now - this.#lastSweep - this.#sweepMs;
    this.#lastSweep = now;
    if (late > this.#o.heartbeatTimeoutMs / 2) {
      // This process stalled: heartbeats may be waiting unread in the socket, and timers run
      // before I/O. Silence that is our own fault evicts nobody.
      this.#log.warn({ lateMs: Math.round(late) }, "sweep ran late; not evicting this round");
      this.#table.touchAll(now);
    } else if (this.#connected) {
      for (const key of this.#table.sweep(now, this.#o.heartbeatTimeoutMs)) {
        this.#counters.evictions++;
        this.#log.info({ key }, "instance evicted: no heartbeat");
        this.#changed(key);
      }
    }
    this.#mirror.retry();
    this.#mirror.compactIfDue();
    this.#metrics?.follow();
    if (this.isLeader) void this.#guard.check();
  }

  /** Whether the table holds every live instance: it has listened for a heartbeat timeout. */
  #settled(): boolean {
    return (
      this.#connected && performance.now() - this.#listeningSince >= this.#o.heartbeatTimeoutMs
    );
  }

  #followConnection(): void {
    void this.#nc.closed().then(() => {
      this.#connected = false;
    });
    this.#status = followConnection(this.#nc, {
      disconnect: (server) => {
        // While disconnected we hear nobody, so nobody is evicted for it.
        this.#connected = false;
        this.#log.warn({ server }, "disconnected from NATS");
      },
      reconnect: (server) => void this.#onReconnect(server),
    });
  }

  async #onReconnect(server: string): Promise<void> {
    this.#connected = true;
    this.#listeningSince = performance.now();
    this.#log.info({ server }, "reconnected to NATS");
    this.#table.touchAll(performance.now());
    const runs = this.#reconciler.runs;
    await this.#lease.reconnected();
    // Messages and writes may have been lost while disconnected: reconcile, unless taking the
    // lead just now already started a run.
    if (this.#lease.isLeader && this.#reconciler.runs === runs && this.#stopping === undefined) {
      void this.#reconciler.start();
    }
  }

  #httpSource(): HttpApiSource {
    return {
      connected: () => this.#connected && !this.#nc.isClosed(),
      isLeader: () => this.isLeader,
      services: () => this.#table.byService(),
      metrics: (req, res) => this.#metrics!.handle(req, res),
    };
  }
}

/**
 * Starts a registry: connects (or uses `connection`), creates the `<P>_presence` and
 * `<P>_registry` buckets when missing, listens to `P.presence.*.*`, contends for the leader
 * lease and, with `http`, serves `/healthz`, `/v1/services` and `/metrics`. Throws `TypeError`
 * on invalid options before connecting, and `MeshError` `UNAVAILABLE` when the buckets cannot
 * be opened.
 */
export async function startRegistry(options?: RegistryOptions): Promise<Registry> {
  const o = resolveRegistryOptions(options);
  const nc =
    o.connection ?? (await connect(connectionOptions(o.servers, "natsmesh-registry", o.identity)));
  const owns = o.connection === undefined;
  let buckets: RegistryBuckets;
  try {
    buckets = await openBuckets(nc, o.prefix, o.replicas, leaseStepMs(o.leaseMs));
  } catch (err) {
    if (owns) await nc.close().catch(() => undefined);
    throw err;
  }
  let gate: TokenGate | undefined;
  try {
    gate =
      o.auth === undefined
        ? undefined
        : await startTokenGate(o.auth, {
            connection: nc,
            prefix: o.prefix,
            onKeys: (kids) => o.logger.info({ component: "registry", kids }, "key set loaded"),
            onError: (err) =>
              o.logger.error({ component: "registry", err }, "key set update refused"),
          });
  } catch (err) {
    if (owns) await nc.close().catch(() => undefined);
    throw err;
  }
  const registry = new RegistryImpl(o, nc, owns, buckets, gate);
  try {
    await registry.start();
  } catch (err) {
    await registry.stop();
    throw err;
  }
  return registry;
}
