import type { KV } from "@nats-io/kv";
import { withTimeout } from "@natsmesh/protocol/internal";
import type { Logger } from "pino";
import { type BucketSnapshot, readBucket } from "./bucket-snapshot.js";
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

export interface KvMirrorOptions {
  kv: KV;
  prefix: string;
  table: InstanceTable;
  counters: Counters;
  log: Logger;
  /** Whether this registry may write now: it holds the lease. */
  canWrite(): boolean;
}

/**
 * Makes the presence bucket match the instance table, writing only what differs: it knows what
 * the bucket holds (read once on taking the lead, then updated by its own writes) and compares
 * canonical JSON. Keys to look at are marked by events (`up` changed, `down`, eviction) or by
 * {@link KvMirror.resync}; writes for one key never overlap, so a `down` cannot overtake the
 * `up` before it. Failed writes are retried on the next {@link KvMirror.retry}.
 */
export class KvMirror {
  readonly #o: KvMirrorOptions;
  #known: BucketSnapshot | undefined;
  /** Set while a resync reads the bucket: writes wait, so the snapshot cannot go stale. */
  #loading: symbol | undefined;
  readonly #dirty = new Set<string>();
  readonly #retry = new Set<string>();
  readonly #inflight = new Set<string>();
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
  }

  /** Queues the writes that failed again. */
  retry(): void {
    for (const key of this.#retry) this.#dirty.add(key);
    this.#retry.clear();
    this.flush();
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
    try {
      // A write finishing after the read would leave the snapshot stale.
      await withTimeout(this.whenIdle(), SNAPSHOT_TIMEOUT_MS, "waiting for presence writes");
      const snapshot = await readBucket(this.#o.kv, this.#o.prefix, SNAPSHOT_TIMEOUT_MS);
      this.#o.log.debug({ keys: snapshot.size, prune }, "presence bucket read");
      if (signal.aborted) return;
      this.#known = snapshot;
      for (const key of this.#o.table.keys()) this.#dirty.add(key);
      if (prune) for (const key of snapshot.keys()) this.#dirty.add(key);
    } finally {
      if (this.#loading === token) this.#loading = undefined;
    }
    this.flush();
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
      if (this.#inflight.size >= MAX_INFLIGHT) return;
      // Looked at again when the write in flight for it completes.
      if (this.#inflight.has(key)) continue;
      this.#dirty.delete(key);
      const desired = table.get(key)?.json;
      if (desired !== undefined) {
        if (!known.has(key) || known.get(key) !== desired) void this.#write(known, key, desired);
      } else if (known.has(key) && !table.heardOnly(key)) {
        void this.#write(known, key, undefined);
      }
    }
  }

  /** Resolves once no write is in flight. */
  whenIdle(): Promise<void> {
    if (this.#inflight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async #write(known: BucketSnapshot, key: string, value: string | undefined): Promise<void> {
    const { kv, counters, log } = this.#o;
    this.#inflight.add(key);
    try {
      if (value === undefined) {
        await kv.delete(key);
        counters.kvDeletes++;
        known.delete(key);
      } else {
        await kv.put(key, value);
        counters.kvPuts++;
        known.set(key, value);
      }
      log.debug({ key, op: value === undefined ? "delete" : "put" }, "presence written");
    } catch (err) {
      counters.kvErrors++;
      log.warn({ err, key }, "presence write failed; retrying later");
      if (this.#known === known) this.#retry.add(key);
    } finally {
      this.#inflight.delete(key);
      if (this.#inflight.size === 0) {
        for (const resolve of this.#idle.splice(0)) resolve();
      }
      this.flush();
    }
  }
}
