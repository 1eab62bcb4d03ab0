import type { KvWatchEntry } from "@nats-io/kv";
import { type InstanceRecord, parsePresenceKey } from "@natsmesh/protocol";
import { decodePresenceEntry } from "./presence-entry.js";
import type { InvalidEntryHandler } from "./read-instances.js";
import type { WatchEvent } from "./watch-event.js";

/**
 * What `watch` has shown so far, by key, so that it can tell `up` from `update`, print a
 * `down` only for what it had shown `up`, and stay quiet when a re-created watch replays
 * records it already printed.
 */
export class PresenceView {
  readonly #prefix: string;
  readonly #emit: (event: WatchEvent) => void;
  readonly #onInvalid: InvalidEntryHandler;
  readonly #known = new Map<string, { record: InstanceRecord; json: string }>();

  constructor(prefix: string, emit: (event: WatchEvent) => void, onInvalid: InvalidEntryHandler) {
    this.#prefix = prefix;
    this.#emit = emit;
    this.#onInvalid = onInvalid;
  }

  /** Applies one entry of a KV watch: a put, a delete or a purge. */
  apply(entry: KvWatchEntry): void {
    if (entry.operation !== "PUT") {
      this.#down(entry.key);
      return;
    }
    const decoded = decodePresenceEntry(entry.key, entry.value, this.#prefix);
    if (!decoded.ok) {
      this.#onInvalid(entry.key, decoded.reason);
      return;
    }
    const json = JSON.stringify(decoded.record);
    const before = this.#known.get(entry.key);
    if (before?.json === json) return;
    this.#known.set(entry.key, { record: decoded.record, json });
    this.#emit({ type: before === undefined ? "up" : "update", instance: decoded.record });
  }

  /**
   * Ends the snapshot of a new watch: whatever was shown before and is not in the bucket any
   * more (deleted, and its marker gone, while the watch was down) goes `down`.
   */
  reconcile(present: ReadonlySet<string>): void {
    for (const key of [...this.#known.keys()]) if (!present.has(key)) this.#down(key);
  }

  #down(key: string): void {
    const before = this.#known.get(key);
    // A delete marker of something never shown (in the snapshot, say) is no news.
    if (before === undefined) return;
    this.#known.delete(key);
    const { service, id } = parsePresenceKey(key) ?? before.record;
    this.#emit({ type: "down", key, service, id, instance: before.record });
  }
}
