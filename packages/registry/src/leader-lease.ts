import { hostname } from "node:os";
import { type KV, type KvEntry, type KvWatchEntry, KvWatchInclude } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/nats-core";
import { delay, withTimeout } from "@natsmesh/protocol/internal";
import type { Logger } from "pino";

/** Key of the lease in `<P>_registry`. */
export const LEADER_KEY = "leader";

/** Bound on releasing the lease, and on waiting for a lease step in flight, when stopping. */
const STOP_TIMEOUT_MS = 2000;

/** How often the lease is renewed or checked, and how long one lease request may take. */
export function leaseStepMs(leaseMs: number): number {
  return Math.max(1, Math.floor(leaseMs / 3));
}

/** The value of the `leader` key: who leads, for humans and tools. */
export interface LeaseRecord {
  /** Registry id (a NUID, new per start). */
  id: string;
  host: string;
  pid: number;
  /** When this registry took the lead, Unix epoch ms. */
  since: number;
  /** When the lease was last written and, by the holder's clock, when it runs out. */
  renewedAt: number;
  expiresAt: number;
  /** The holder's lease time: followers wait at least this long, whatever their own setting. */
  leaseMs: number;
}

export interface LeaderLeaseOptions {
  kv: KV;
  /** This registry's id. */
  id: string;
  leaseMs: number;
  log: Logger;
  /** Called on every change of leadership, `false` before any write could follow the loss. */
  onChange(isLeader: boolean): void;
  /** Creates `<P>_registry` again when it is gone; called when the lease cannot be read. */
  recreate(): Promise<void>;
}

/**
 * The leader lease: the key `leader` in `<P>_registry`, only ever written by compare-and-set.
 * The holder renews it every `leaseMs / 3` and stops leading the moment a renewal fails. A
 * follower takes it over when the key is gone, or when its revision has not moved for
 * `leaseMs` by the follower's own clock (so clocks of different hosts never matter). A KV watch
 * makes followers notice a release at once; polling at `leaseMs / 3` backs the watch up. A
 * follower also checks again the moment the revision it saw would run out, so a dead leader is
 * replaced `leaseMs` after its last renewal, not up to a polling step later.
 */
export class LeaderLease {
  readonly #o: LeaderLeaseOptions;
  readonly #interval: number;
  readonly #abort = new AbortController();
  #revision: number | undefined;
  #validUntil = 0;
  #since = 0;
  #seen: { revision: number; at: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** A follower's check at the moment the lease it saw runs out. */
  #expiry: NodeJS.Timeout | undefined;
  #watch: QueuedIterator<KvWatchEntry> | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopping: Promise<void> | undefined;

  constructor(options: LeaderLeaseOptions) {
    this.#o = options;
    this.#interval = leaseStepMs(options.leaseMs);
  }

  /**
   * Holds the lease. Also false once `leaseMs` have passed since the last successful renewal
   * was sent, even if no failure was seen yet (a stalled event loop): by then a follower may
   * have taken over.
   */
  get isLeader(): boolean {
    return this.#revision !== undefined && performance.now() < this.#validUntil;
  }

  /** Makes a first attempt at the lease, then keeps renewing or contending. */
  async start(): Promise<void> {
    await this.tick();
    this.#timer = setInterval(() => void this.tick(), this.#interval);
    this.#timer.unref();
    void this.#watchLoop();
  }

  /** Runs one lease step now (renew or contend); steps never overlap, extra requests coalesce. */
  tick(): Promise<void> {
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        if (this.#abort.signal.aborted) return;
        if (this.#revision !== undefined) await this.#renew();
        else await this.#contend();
      } while (this.#again);
    })().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** After a reconnect: watch afresh and check the lease at once (renew, or contend). */
  reconnected(): Promise<void> {
    this.#watch?.stop();
    return this.tick();
  }

  /** Stops leading and contending and releases the lease if held. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#abort.abort();
    clearInterval(this.#timer);
    clearTimeout(this.#expiry);
    this.#watch?.stop();
    await withTimeout(this.#running ?? Promise.resolve(), STOP_TIMEOUT_MS, "lease step").catch(
      () => undefined,
    );
    const revision = this.#revision;
    if (revision === undefined) return;
    this.#step(undefined);
    try {
      // Only if still ours: a CAS delete cannot remove a lease another registry took over.
      await withTimeout(
        this.#o.kv.delete(LEADER_KEY, { previousSeq: revision }),
        STOP_TIMEOUT_MS,
        "releasing the lease",
      );
      this.#o.log.info("released the lead");
    } catch (err) {
      this.#o.log.warn({ err }, "lease not released; a follower takes over after the lease time");
    }
  }

  #value(): string {
    const now = Date.now();
    const record: LeaseRecord = {
      id: this.#o.id,
      host: hostname(),
      pid: process.pid,
      since: this.#since,
      renewedAt: now,
      expiresAt: now + this.#o.leaseMs,
      leaseMs: this.#o.leaseMs,
    };
    return JSON.stringify(record);
  }

  async #renew(): Promise<void> {
    const revision = this.#revision!;
    const sent = performance.now();
    try {
      const next = await this.#o.kv.update(LEADER_KEY, this.#value(), revision, this.#interval);
      // Stepped down meanwhile (stop, or the watch saw another holder): stay down.
      if (this.#revision !== revision) return;
      this.#revision = next;
      this.#validUntil = sent + this.#o.leaseMs;
    } catch (err) {
      if (this.#revision !== revision) return;
      this.#o.log.warn({ err }, "lease renewal failed; stepping down");
      this.#step(undefined);
    }
  }

  async #contend(): Promise<void> {
    const { kv, log } = this.#o;
    let entry: KvEntry | null;
    try {
      entry = await kv.get(LEADER_KEY);
    } catch (err) {
      log.debug({ err }, "could not read the leader lease");
      // Maybe the bucket is gone (someone deleted it): without it nobody can ever lead again.
      // Opening it creates it when missing, and costs one request when it is there.
      await this.#o.recreate().catch((e) => log.debug({ err: e }, "could not open the bucket"));
      return;
    }
    if (this.#abort.signal.aborted) return;
    if (entry === null || entry.operation !== "PUT") {
      await this.#acquire((value) => kv.create(LEADER_KEY, value));
      return;
    }
    const current = entry;
    const holder = holderOf(current);
    // Our own lease from before a disconnect: nobody has taken it, and CAS proves that.
    if (holder?.id === this.#o.id) {
      await this.#acquire((value) => kv.update(LEADER_KEY, value, current.revision));
      return;
    }
    const now = performance.now();
    if (this.#seen?.revision !== current.revision) {
      this.#seen = { revision: current.revision, at: now };
    }
    // A holder renewing on a longer lease than ours is still alive: wait for its lease.
    const leaseMs = Math.max(this.#o.leaseMs, holder?.leaseMs ?? 0);
    const left = this.#seen.at + leaseMs - now;
    if (left > 0) {
      this.#checkAfter(left);
      return;
    }
    log.info({ holder: holder?.id }, "leader lease expired; taking over");
    await this.#acquire((value) => kv.update(LEADER_KEY, value, current.revision));
  }

  async #acquire(write: (value: string) => Promise<number>): Promise<void> {
    const sent = performance.now();
    this.#since = Date.now();
    try {
      const revision = await write(this.#value());
      this.#validUntil = sent + this.#o.leaseMs;
      // Won while stopping: hold it silently, only for stop() to release it at once.
      if (this.#abort.signal.aborted) this.#revision = revision;
      else this.#step(revision);
    } catch (err) {
      // Another registry won the compare-and-set: it leads, we follow.
      this.#o.log.debug({ err }, "lease not acquired");
    }
  }

  /** Contends again in `ms`, when the lease this follower saw runs out (one timer at most). */
  #checkAfter(ms: number): void {
    clearTimeout(this.#expiry);
    if (this.#abort.signal.aborted) return;
    this.#expiry = setTimeout(() => void this.tick(), Math.ceil(ms));
    this.#expiry.unref();
  }

  /** Enters (`revision`) or leaves (`undefined`) the lead, telling the registry. */
  #step(revision: number | undefined): void {
    const was = this.#revision !== undefined;
    this.#revision = revision;
    this.#seen = undefined;
    clearTimeout(this.#expiry);
    if (revision === undefined) this.#validUntil = 0;
    if (was !== (revision !== undefined)) this.#o.onChange(revision !== undefined);
  }

  async #watchLoop(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        const watch = await this.#o.kv.watch({
          key: LEADER_KEY,
          include: KvWatchInclude.UpdatesOnly,
        });
        this.#watch = watch;
        if (signal.aborted) watch.stop();
        for await (const e of watch) this.#onEntry(e);
      } catch (err) {
        this.#o.log.debug({ err }, "leader watch ended");
      }
      this.#watch = undefined;
      await delay(this.#interval, signal);
    }
  }

  #onEntry(e: KvWatchEntry): void {
    if (this.#abort.signal.aborted) return;
    // Our own writes: renewals, and an acquisition whose reply has not arrived yet.
    if (e.operation === "PUT" && holderOf(e)?.id === this.#o.id) return;
    if (this.#revision !== undefined) {
      // Someone else wrote the lease we believe we hold: stop writing before anything else.
      this.#o.log.warn({ holder: holderOf(e)?.id }, "leader lease lost to another writer");
      this.#step(undefined);
    }
    if (e.operation === "PUT") {
      if (this.#seen?.revision !== e.revision) {
        this.#seen = { revision: e.revision, at: performance.now() };
        const holder = holderOf(e);
        this.#checkAfter(Math.max(this.#o.leaseMs, holder?.leaseMs ?? 0));
      }
      return;
    }
    // Released: contend now rather than at the next poll.
    void this.tick();
  }
}

/** The holder's id and lease time, as far as the value says; anything else is ignored. */
function holderOf(e: KvEntry): { id?: string; leaseMs?: number } | undefined {
  try {
    const { id, leaseMs } = e.json<Partial<LeaseRecord>>();
    return {
      ...(typeof id === "string" ? { id } : {}),
      ...(typeof leaseMs === "number" && Number.isSafeInteger(leaseMs) && leaseMs > 0
        ? { leaseMs }
        : {}),
    };
  } catch {
    return undefined;
  }
}
