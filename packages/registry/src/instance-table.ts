import { canonicalRecord, type InstanceRecord, type InstanceStatus } from "@natsmesh/protocol";
import { type PresenceQuotas, resolvePresenceQuotas } from "@natsmesh/protocol/internal";
import { type Binding, Tombstones } from "./binding.js";
import { valueDigest } from "./bucket-snapshot.js";

/** One live instance as the registry knows it. */
export interface InstanceEntry {
  readonly record: InstanceRecord;
  /** {@link canonicalRecord} of `record`: tells a changed record from the same one. */
  readonly canonical: string;
  /** What belongs in KV: `canonical`, with the registry's signature when it signs. */
  readonly json: string;
  /** {@link valueDigest} of `json`, to compare with what the bucket holds. */
  readonly digest: string;
  /** Monotonic time (`performance.now()`) of the last `up` or `hb`. */
  lastSeen: number;
  /** Status and in-flight count from the last heartbeat. */
  status: InstanceStatus;
  inflight: number;
  /** Who announced it: only the same binding may speak for it. */
  readonly binding: Binding;
}

/** Most bindings of gone instances kept. */
const MAX_TOMBSTONES = 10_000;

/** Pauses between syncs asked for one instance heard only through heartbeats. */
export const SYNC_BACKOFF = { firstMs: 1000, maxMs: 60_000 } as const;

interface HeardOnly {
  lastSeen: number;
  readonly binding: Binding;
  /** Syncs asked for it so far, and when the next one may be. */
  asks: number;
  askAt: number;
}

/** What an `up` did to the table: taken, or refused by a quota (the table is unchanged). */
export type UpResult = "new" | "changed" | "same" | "over-quota" | "too-large";

/** How the table stores records, and how many it keeps. */
export interface InstanceTableOptions {
  /** The value to store for a record, from its canonical JSON (signs it, say). @default as is */
  encode?(key: string, record: InstanceRecord, canonical: string): string;
  /** @default {@link DEFAULT_PRESENCE_QUOTAS} */
  quotas?: PresenceQuotas;
}

/**
 * The in-memory set of live instances, keyed `<service>.<id>`. Every registry keeps one,
 * leader or not, so a new leader already knows the live set.
 */
export class InstanceTable {
  readonly #entries = new Map<string, InstanceEntry>();
  // Instances heard only through heartbeats (their `up` was missed): a sync is on its way, and
  // until their record arrives their KV key must not be pruned as stale.
  readonly #heardOnly = new Map<string, HeardOnly>();
  readonly #tombstones = new Tombstones(MAX_TOMBSTONES);
  /** Instances with a record, per service, for the per-service quota. */
  readonly #perService = new Map<string, number>();
  readonly #encode: NonNullable<InstanceTableOptions["encode"]>;
  readonly #quotas: Readonly<Required<PresenceQuotas>>;

  constructor(options: InstanceTableOptions = {}) {
    this.#encode = options.encode ?? ((_key, _record, canonical) => canonical);
    this.#quotas = resolvePresenceQuotas(options.quotas, "quotas");
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): InstanceEntry | undefined {
    return this.#entries.get(key);
  }

  keys(): IterableIterator<string> {
    return this.#entries.keys();
  }

  values(): IterableIterator<InstanceEntry> {
    return this.#entries.values();
  }

  /**
   * Who may speak for `key`: the binding of its entry, of its heartbeats while its record is
   * missing, or of its tombstone when it went away lately; `undefined` when nobody holds it.
   */
  binding(key: string, now: number): Binding | undefined {
    return (
      this.#entries.get(key)?.binding ??
      this.#heardOnly.get(key)?.binding ??
      this.#tombstones.get(key, now)
    );
  }

  /**
   * Records an instance's `up`; the caller has checked that `binding` may speak for it. A
   * record larger than `maxRecordBytes` once stored, or a new instance beyond `maxRecords` or
   * `maxInstancesPerService`, is refused and changes nothing.
   */
  up(key: string, record: InstanceRecord, now: number, binding: Binding): UpResult {
    const canonical = canonicalRecord(record);
    const old = this.#entries.get(key);
    if (old !== undefined && old.canonical === canonical) {
      old.lastSeen = now;
      return "same";
    }
    const json = this.#encode(key, record, canonical);
    if (Buffer.byteLength(json) > this.#quotas.maxRecordBytes) return "too-large";
    if (old === undefined) {
      const { maxRecords, maxInstancesPerService } = this.#quotas;
      const ofService = this.#perService.get(record.service) ?? 0;
      if (this.#entries.size >= maxRecords || ofService >= maxInstancesPerService) {
        return "over-quota";
      }
      this.#perService.set(record.service, ofService + 1);
    }
    this.#heardOnly.delete(key);
    this.#tombstones.delete(key);
    this.#entries.set(key, {
      record,
      canonical,
      json,
      digest: valueDigest(json),
      lastSeen: now,
      status: record.status,
      inflight: 0,
      binding,
    });
    return old === undefined ? "new" : "changed";
  }

  /**
   * Refreshes a known instance; returns `false` for one the table has no record of, which is
   * then remembered as heard (bound to `binding`) until its record arrives, unless the table
   * holds `maxRecords` instances (with or without a record) already.
   */
  heartbeat(
    key: string,
    status: InstanceStatus,
    inflight: number,
    now: number,
    binding: Binding,
  ): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined) {
      const heard = this.#heardOnly.get(key);
      if (heard === undefined) {
        if (this.#entries.size + this.#heardOnly.size >= this.#quotas.maxRecords) return false;
        this.#tombstones.delete(key);
        this.#heardOnly.set(key, { lastSeen: now, asks: 0, askAt: now, binding });
      } else heard.lastSeen = now;
      return false;
    }
    entry.lastSeen = now;
    entry.status = status;
    entry.inflight = inflight;
    return true;
  }

  /** Forgets an instance, keeping its binding for a while; returns whether it had a record. */
  remove(key: string, now: number): boolean {
    const binding = this.binding(key, now);
    if (binding !== undefined) this.#tombstones.add(key, binding, now);
    this.#heardOnly.delete(key);
    return this.#forget(key);
  }

  #forget(key: string): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    this.#entries.delete(key);
    const left = (this.#perService.get(entry.record.service) ?? 1) - 1;
    if (left === 0) this.#perService.delete(entry.record.service);
    else this.#perService.set(entry.record.service, left);
    return true;
  }

  /** Whether an instance without a record has sent a heartbeat lately. */
  heardOnly(key: string): boolean {
    return this.#heardOnly.has(key);
  }

  /**
   * Whether to ask for a sync on behalf of an instance heard only through heartbeats. The
   * first time yes; then with a doubling pause up to {@link SYNC_BACKOFF.maxMs}, because an
   * agent whose `up` never validates would otherwise make the whole mesh re-announce every
   * second, forever.
   */
  shouldAsk(key: string, now: number): boolean {
    const heard = this.#heardOnly.get(key);
    if (heard === undefined || now < heard.askAt) return false;
    const pause = SYNC_BACKOFF.firstMs * 2 ** heard.asks;
    heard.asks++;
    heard.askAt = now + Math.min(pause, SYNC_BACKOFF.maxMs);
    return true;
  }

  /** Removes and returns the keys of instances silent since `now - timeoutMs`. */
  sweep(now: number, timeoutMs: number): string[] {
    const evicted: string[] = [];
    for (const [key, entry] of this.#entries) {
      if (now - entry.lastSeen > timeoutMs) {
        this.#forget(key);
        this.#tombstones.add(key, entry.binding, now);
        evicted.push(key);
      }
    }
    for (const [key, heard] of this.#heardOnly) {
      if (now - heard.lastSeen > timeoutMs) {
        this.#heardOnly.delete(key);
        this.#tombstones.add(key, heard.binding, now);
      }
    }
    return evicted;
  }

  /**
   * Counts every instance as just seen. After a disconnect the registry heard nothing for a
   * while through no fault of the instances; they get a full timeout to announce again.
   */
  touchAll(now: number): void {
    for (const entry of this.#entries.values()) entry.lastSeen = now;
    for (const heard of this.#heardOnly.values()) heard.lastSeen = now;
  }

  /** Copies of the records, grouped by service, services and ids in order. */
  byService(): Record<string, InstanceRecord[]> {
    // A Map, then fromEntries: a service may be named `__proto__`, a plain object would choke.
    const groups = new Map<string, InstanceRecord[]>();
    for (const key of [...this.#entries.keys()].sort()) {
      const { record } = this.#entries.get(key)!;
      const list = groups.get(record.service) ?? [];
      list.push(structuredClone(record));
      groups.set(record.service, list);
    }
    return Object.fromEntries(groups);
  }
}
