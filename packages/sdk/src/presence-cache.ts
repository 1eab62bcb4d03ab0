import { type KV, Kvm, type KvWatchEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import {
  type InstanceRecord,
  parsePresenceKey,
  presenceBucket,
  validateInstanceRecord,
} from "@natsmesh/protocol";
import type { Logger } from "pino";

/** A change of the presence view. */
export interface PresenceEvent {
  type: "up" | "update" | "down";
  instance: InstanceRecord;
}

/** How long calls wait at most for the first snapshot before they fall back to the queue subject. */
const SNAPSHOT_WAIT_MS = 250;
/** Pause before opening the bucket or the watch again after it failed or ended: doubling, bounded. */
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5000;

/**
 * The SDK's view of `<P>_presence`: a KV watch (snapshot, then updates) kept in memory, by
 * service. It is correct for an empty or missing bucket (nothing waits for a snapshot that will
 * never come), applies deletes and purges, and re-creates the watch when it ends, as it does
 * across server restarts. Instances a call found dead are hidden until their record changes.
 */
export class PresenceCache {
  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #log: Logger;
  readonly #services = new Map<string, Map<string, InstanceRecord>>();
  readonly #down = new Set<string>();
  /** KV revision of each record held: a re-watch replays unchanged entries, which are no news. */
  readonly #revisions = new Map<string, number>();
  readonly #listeners = new Set<(event: PresenceEvent) => void>();
  #ready = false;
  #readyWaiters: (() => void)[] = [];
  #stopped = false;
  #watch: { stop(): void } | undefined;
  #retry: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;

  constructor(nc: NatsConnection, prefix: string, log: Logger) {
    this.#nc = nc;
    this.#prefix = prefix;
    this.#log = log;
    void this.#run();
  }

  /** True once the first snapshot is in (or there was nothing to load). */
  get ready(): boolean {
    return this.#ready;
  }

  /**
   * Resolves once the first snapshot is in, or after a short bound: a call never waits long for
   * presence, it falls back to the queue subject instead.
   */
  whenReady(maxWaitMs = SNAPSHOT_WAIT_MS): Promise<void> {
    if (this.#ready) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, maxWaitMs);
      this.#readyWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Every known instance of `service` (or of all services), including draining ones. */
  instances(service?: string): InstanceRecord[] {
    if (service !== undefined) return [...(this.#services.get(service)?.values() ?? [])];
    return [...this.#services.values()].flatMap((m) => [...m.values()]);
  }

  /** Instances of `service` that may take a new call: ready, and not found dead by a call. */
  live(service: string): InstanceRecord[] {
    const byId = this.#services.get(service);
    if (byId === undefined) return [];
    const out: InstanceRecord[] = [];
    for (const r of byId.values()) if (r.status === "ready" && !this.#down.has(r.id)) out.push(r);
    return out;
  }

  /** Hides an instance whose subject had no responders, until the registry says otherwise. */
  markDown(service: string, id: string): void {
    const record = this.#services.get(service)?.get(id);
    if (record === undefined || this.#down.has(id)) return;
    this.#down.add(id);
    this.#emit({ type: "down", instance: record });
  }

  /** Registers a listener of changes; returns its removal. */
  subscribe(listener: (event: PresenceEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
    this.#wake?.();
    this.#watch?.stop();
    this.#setReady();
  }

  async #run(): Promise<void> {
    let pause = RETRY_MIN_MS;
    while (!this.#stopped) {
      try {
        if (await this.#watchOnce()) pause = RETRY_MIN_MS;
      } catch (err) {
        if (this.#stopped) return;
        this.#log.debug({ err }, "presence watch failed; retrying");
      }
      // An empty view is still a view: calls must not wait for a bucket that is not there.
      this.#setReady();
      if (this.#stopped) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#retry = setTimeout(resolve, pause);
        this.#retry.unref();
      });
      pause = Math.min(RETRY_MAX_MS, pause * 2);
    }
  }

  /** Follows the bucket until the watch ends; true when it got as far as watching. */
  async #watchOnce(): Promise<boolean> {
    const kv: KV = await new Kvm(this.#nc).open(presenceBucket(this.#prefix));
    const { values } = await kv.status();
    const iter = await kv.watch();
    this.#watch = iter;
    // stop() may have run while the watch was being opened: it must not outlive the mesh.
    if (this.#stopped) {
      iter.stop();
      return false;
    }
    // Entries that no longer exist after a re-watch are reported down at the end of the snapshot.
    const seen = new Set<string>();
    let snapshot = true;
    if (values === 0) {
      snapshot = this.#endSnapshot(seen);
    }
    for await (const entry of iter) {
      if (this.#stopped) break;
      if (snapshot) seen.add(entry.key);
      this.#apply(entry);
      if (snapshot && (entry.isUpdate || (entry.delta ?? 0) === 0))
        snapshot = this.#endSnapshot(seen);
    }
    return true;
  }

  #endSnapshot(seen: Set<string>): false {
    for (const [service, byId] of this.#services) {
      for (const id of [...byId.keys()])
        if (!seen.has(`${service}.${id}`)) this.#remove(service, id);
    }
    this.#setReady();
    return false;
  }

  #apply(entry: KvWatchEntry): void {
    const key = parsePresenceKey(entry.key);
    if (key === undefined) return;
    if (entry.operation !== "PUT") {
      this.#remove(key.service, key.id);
      return;
    }
    let parsed: unknown;
    try {
      parsed = entry.json();
    } catch {
      parsed = undefined;
    }
    const checked = validateInstanceRecord(parsed, this.#prefix);
    if (!checked.ok || checked.value.service !== key.service || checked.value.id !== key.id) {
      this.#log.warn({ key: entry.key }, "ignoring an invalid presence record");
      return;
    }
    if (this.#revisions.get(entry.key) === entry.revision) return;
    this.#revisions.set(entry.key, entry.revision);
    const record = Object.freeze(checked.value);
    let byId = this.#services.get(key.service);
    if (byId === undefined) {
      byId = new Map();
      this.#services.set(key.service, byId);
    }
    const known = byId.has(key.id) && !this.#down.has(key.id);
    this.#down.delete(key.id);
    byId.set(key.id, record);
    this.#emit({ type: known ? "update" : "up", instance: record });
  }

  #remove(service: string, id: string): void {
    const byId = this.#services.get(service);
    const record = byId?.get(id);
    if (record === undefined) return;
    this.#revisions.delete(`${service}.${id}`);
    byId!.delete(id);
    if (byId!.size === 0) this.#services.delete(service);
    const wasDown = this.#down.delete(id);
    if (!wasDown) this.#emit({ type: "down", instance: record });
  }

  #emit(event: PresenceEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  #setReady(): void {
    if (this.#ready) return;
    this.#ready = true;
    for (const w of this.#readyWaiters.splice(0)) w();
  }
}
