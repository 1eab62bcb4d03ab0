import type { KV, KvEntry } from "@nats-io/kv";
import { type ThrottledLog, withTimeout } from "@natsmesh/protocol/internal";
import type { Logger } from "pino";
import { type BucketSnapshot, readBucket, valueDigest } from "./bucket-snapshot.js";
import type { InstanceTable } from "./instance-table.js";
import type { Counters } from "./stats.js";

/** Writes in flight at once; the rest wait their turn in the dirty set. */
const MAX_INFLIGHT = 64;
/** Bound on reading the bucket, and on waiting for writes in flight before reading it. */
const SNAPSHOT_TIMEOUT_MS = 10_000;
/** Delete markers older than this are purged, so dead instance ids do not pile up forever. */
const MARKER_AGE_MS = 30 * 60_000;
/** How often the leader purges old delete markers. */
const COMPACT_INTERVAL_MS = 10 * 60_000;
/** Most changes kept while the bucket is being read; beyond that, it is read again. */
const MAX_PENDING = 100_000;

export interface KvMirrorOptions {
  kv: KV;
  table: InstanceTable;
  counters: Counters;
  log: Logger;
  throttled: ThrottledLog;
  /** Whether this registry may write now: it holds the lease. */
  canWrite(): boolean;
  /**
   * Whether the table holds every live instance: the registry has listened for a heartbeat
   * timeout. Until then a key it does not know may be a live instance's, and is left alone.
   */
  settled(): boolean;
}

/** A change of the bucket as a watch reports it. */
export type ObservedEntry = Pick<KvEntry, "key" | "operation" | "value" | "revision">;

/** How the stream's state compares with what the mirror knows. */
export type Consistency = "consistent" | "behind" | "lost";

/**
 * Makes the presence bucket match the instance table, writing only what differs: it knows what
 * the bucket holds (read on taking the lead, then kept current by its own writes and by
 * {@link KvMirror.observe}, which a watch of the bucket feeds) and compares value digests. Keys to
 * look at are marked by events (`up` changed, `down`, eviction, a change by someone else) or by
 * {@link KvMirror.resync}; writes for one key never overlap, so a `down` cannot overtake the `up`
 * before it. Failed writes are retried on the next {@link KvMirror.retry}.
 */
export class KvMirror {
  readonly #o: KvMirrorOptions;
  #known: BucketSnapshot | undefined;
  /** Set while a resync reads the bucket: writes wait, so the snapshot cannot go stale. */
  #loading: symbol | undefined;
  /** Changes seen while the bucket was being read, latest per key, applied once it is read. */
  #pending = new Map<string, ObservedEntry>();
  #pendingOverflow = false;
  readonly #dirty = new Set<string>();
  readonly #retry = new Set<string>();
  /** Writes in flight: the digest of the value being put, or `null` for a delete. */
  readonly #writing = new Map<string, string | null>();
  #idle: (() => void)[] = [];
  #lock: Promise<void> = Promise.resolve();
  #compacted = performance.now();

  constructor(options: KvMirrorOptions) {
    this.#o = options;
  }

  /** Whether the bucket's content is known, so writes can be decided. */
  get ready(): boolean {
    return this.#known !== undefined && this.#loading === undefined;
  }

  /** The record of `key` may have changed: write it if it differs from the bucket. */
  mark(key: string): void {
    // A follower keeps no list: taking the lead resyncs every key anyway, and the list would
    // only grow with every instance that ever came and went.
    if (this.#known === undefined && this.#loading === undefined) return;
    this.#dirty.add(key);
    this.flush();
  }

  /** Leadership lost: the next leader owns the bucket, and what it holds is no longer known. */
  reset(): void {
    this.#known = undefined;
    this.#dirty.clear();
    this.#retry.clear();
    this.#pending.clear();
  }

  /** Queues the writes that failed again. */
  retry(): void {
    for (const key of this.#retry) this.#dirty.add(key);
    this.#retry.clear();
    this.flush();
  }

  /**
   * A change of the bucket, reported by a watch: remembered, and when it is not what this leader
   * wants there (someone else's put, delete or purge), the key is marked for repair and counted.
   */
  observe(entry: ObservedEntry): void {
    if (this.#loading !== undefined) {
      if (this.#pending.size >= MAX_PENDING && !this.#pending.has(entry.key)) {
        this.#pendingOverflow = true;
      } else {
        this.#pending.set(entry.key, entry);
      }
      return;
    }
    if (this.#known !== undefined) this.#apply(this.#known, entry);
  }

  /**
   * Compares the stream's state with what the mirror knows. `behind`: changes are still on their
   * way (or writes in flight); `lost`: entries are gone without a marker (a purge of the stream,
   * or a new stream), so the bucket must be read again.
   */
  consistency(state: { messages: number; last_seq: number }): Consistency {
    const known = this.#known;
    if (known === undefined || !this.ready || this.#writing.size > 0) return "behind";
    if (state.last_seq > known.lastSeq) return "behind";
    if (state.last_seq < known.lastSeq) return "lost";
    return state.messages === known.values.size + known.markers.size ? "consistent" : "lost";
  }

  /**
   * Reads the bucket afresh, then writes every live record that is missing or different and,
   * with `prune`, deletes every key of an instance not in the table. Resyncs run one at a time;
   * an aborted one changes nothing. Throws when the bucket cannot be read.
   */
  resync(prune: boolean, signal: AbortSignal): Promise<void> {
    const run = this.#lock.then(() => this.#resync(prune, signal));
    // An aborted resync (the lead was lost) may wait out a request lost in a disconnect; the
    // next one must not wait for it, as its result is thrown away anyway.
    this.#lock = new Promise<void>((resolve) => {
      run.then(resolve, resolve);
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
    return run;
  }

  async #resync(prune: boolean, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const token = Symbol("resync");
    this.#loading = token;
    this.#pending = new Map();
    this.#pendingOverflow = false;
    let again = false;
    try {
      // A write finishing after the read would leave the snapshot stale.
      await withTimeout(this.whenIdle(), SNAPSHOT_TIMEOUT_MS, "waiting for presence writes");
      const { table } = this.#o;
      const snapshot = await readBucket(this.#o.kv, SNAPSHOT_TIMEOUT_MS);
      this.#o.log.debug({ keys: snapshot.values.size, prune }, "presence bucket read");
      if (signal.aborted) return;
      this.#known = snapshot;
      for (const entry of this.#pending.values()) this.#apply(snapshot, entry);
      again = this.#pendingOverflow;
      for (const key of table.keys()) this.#dirty.add(key);
      if (prune) for (const key of snapshot.values.keys()) this.#dirty.add(key);
    } finally {
      if (this.#loading === token) this.#loading = undefined;
      this.#pending = new Map();
    }
    this.flush();
    if (again) await this.#resync(prune, signal);
  }

  #apply(known: BucketSnapshot, entry: ObservedEntry): void {
    const { key, revision } = entry;
    const last = known.values.get(key)?.revision ?? known.markers.get(key);
    // Older than what is known of the key (our own write's acknowledgement came first): no news.
    if (last !== undefined && revision <= last) return;
    known.lastSeq = Math.max(known.lastSeq, revision);
    const desired = this.#o.table.get(key)?.digest;
    let observed: string | null = null;
    if (entry.operation === "PUT") {
      observed = valueDigest(entry.value);
      known.values.set(key, { digest: observed, revision });
      known.markers.delete(key);
    } else {
      known.values.delete(key);
      known.markers.set(key, revision);
    }
    if (this.#writing.get(key) === observed) return; // our own write, seen before its ack
    if (observed === (desired ?? null)) return; // what this leader wants there anyway
    this.#o.counters.foreign++;
    this.#o.throttled.warn(
      "foreign",
      { key, op: entry.operation, foreign: this.#o.counters.foreign },
      "presence bucket changed by someone else than this leader; repairing it",
    );
    // A key the table does not know may be a live instance's not heard from yet: it is pruned
    // once the table is complete, by the reconciliation or by this watch afterwards.
    if (desired !== undefined || this.#o.settled()) this.mark(key);
  }

  /** Purges old delete markers when the last purge is {@link COMPACT_INTERVAL_MS} old. */
  compactIfDue(): void {
    if (this.ready && performance.now() - this.#compacted > COMPACT_INTERVAL_MS) {
      void this.compact();
    }
  }

  /** Purges old delete markers; best effort, never throws. */
  async compact(): Promise<void> {
    const kv = this.#o.kv as KV & { purgeDeletes?: (olderMillis: number) => Promise<unknown> };
    if (!this.#o.canWrite() || typeof kv.purgeDeletes !== "function") return;
    this.#compacted = performance.now();
    try {
      await withTimeout(kv.purgeDeletes(MARKER_AGE_MS), SNAPSHOT_TIMEOUT_MS, "purging markers");
    } catch (err) {
      this.#o.log.debug({ err }, "purging old delete markers failed");
    }
  }

  /** Starts the writes that are due, if this registry may write. */
  flush(): void {
    const known = this.#known;
    if (known === undefined || this.#loading !== undefined || !this.#o.canWrite()) return;
    const { table } = this.#o;
    for (const key of this.#dirty) {
      if (this.#writing.size >= MAX_INFLIGHT) return;
      // Looked at again when the write in flight for it completes.
      if (this.#writing.has(key)) continue;
      this.#dirty.delete(key);
      const desired = table.get(key);
      const stored = known.values.get(key);
      if (desired !== undefined) {
        if (stored?.digest !== desired.digest) void this.#write(known, key, desired);
      } else if (stored !== undefined && !table.heardOnly(key)) {
        void this.#write(known, key, undefined);
      }
    }
  }

  /** Resolves once no write is in flight. */
  whenIdle(): Promise<void> {
    if (this.#writing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async #write(
    known: BucketSnapshot,
    key: string,
    value: { json: string; digest: string } | undefined,
  ): Promise<void> {
    const { kv, counters, log } = this.#o;
    this.#writing.set(key, value?.digest ?? null);
    try {
      if (value === undefined) {
        const before = known.values.get(key)?.revision ?? 0;
        await kv.delete(key);
        counters.kvDeletes++;
        known.values.delete(key);
        // The marker's own revision arrives with the watch; until then, the value's.
        known.markers.set(key, Math.max(before, known.markers.get(key) ?? 0));
      } else {
        const revision = await kv.put(key, value.json);
        counters.kvPuts++;
        if (revision > (known.values.get(key)?.revision ?? known.markers.get(key) ?? 0)) {
          known.values.set(key, { digest: value.digest, revision });
          known.markers.delete(key);
          known.lastSeq = Math.max(known.lastSeq, revision);
        }
      }
      log.debug({ key, op: value === undefined ? "delete" : "put" }, "presence written");
    } catch (err) {
      counters.kvErrors++;
      log.warn({ err, key }, "presence write failed; retrying later");
      if (this.#known === known) this.#retry.add(key);
    } finally {
      this.#writing.delete(key);
      if (this.#writing.size === 0) {
        for (const resolve of this.#idle.splice(0)) resolve();
      }
      this.flush();
    }
  }
}
