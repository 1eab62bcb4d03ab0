import type { InstanceRecord } from "@natsmesh/protocol";
import type { PresenceChange, PresenceSource } from "./presence-source.js";

/**
 * A {@link PresenceSource} a host fills: it says what a key holds now (`set`), the feed keeps
 * the live set and tells listeners what changed. Setting the same record again is no news.
 */
export class PresenceFeed implements PresenceSource {
  readonly #records = new Map<string, { record: InstanceRecord; json: string }>();
  readonly #listeners = new Set<(change: PresenceChange) => void>();

  /** The number of live instances. */
  get size(): number {
    return this.#records.size;
  }

  /** Records what `key` (`<service>.<id>`) holds now: a record, or `undefined` when it is gone. */
  set(key: string, record: InstanceRecord | undefined): void {
    const before = this.#records.get(key);
    if (record === undefined) {
      if (before === undefined) return;
      this.#records.delete(key);
      this.#emit({ type: "down", instance: before.record });
      return;
    }
    const json = JSON.stringify(record);
    if (before?.json === json) return;
    this.#records.set(key, { record, json });
    this.#emit(
      before === undefined
        ? { type: "up", instance: record }
        : { type: "update", instance: record, previous: before.record },
    );
  }

  snapshot(): InstanceRecord[] {
    return Array.from(this.#records.values(), (e) => e.record);
  }

  subscribe(listener: (change: PresenceChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(change: PresenceChange): void {
    for (const listener of this.#listeners) listener(change);
  }
}
