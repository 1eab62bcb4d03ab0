import type { KvWatchEntry } from "@nats-io/kv";
import { type InstanceRecord, type MeshError, parsePresenceEntry } from "@natsmesh/protocol";

/** A change of the watched part of `<P>_presence`. */
export interface PresenceWatchEvent {
  /** `up`: new; `update`: its record changed; `down`: gone (only for what was reported `up`). */
  type: "up" | "update" | "down";
  /** The KV key, `<service>.<id>`. */
  key: string;
  /** The record; for `down`, the last one reported. */
  instance: InstanceRecord;
}

/** The parts of a KV watch entry the view reads. */
export type PresenceEntry = Pick<KvWatchEntry, "key" | "operation" | "value" | "revision">;

/**
 * What a presence watch has reported, by key, so that it can tell `up` from `update`, report
 * `down` only for what it reported `up`, and stay quiet when a re-created watch replays
 * records it already reported. Pure: entries in, events out.
 */
export class PresenceView {
  readonly #prefix: string;
  readonly #onEvent: (event: PresenceWatchEvent) => void;
  readonly #onInvalid: (key: string, error: MeshError) => void;
  readonly #known = new Map<string, { record: InstanceRecord; revision: number }>();

  constructor(
    prefix: string,
    onEvent: (event: PresenceWatchEvent) => void,
    onInvalid: (key: string, error: MeshError) => void,
  ) {
    this.#prefix = prefix;
    this.#onEvent = onEvent;
    this.#onInvalid = onInvalid;
  }

  /** Applies one entry of a watch: a put, a delete or a purge. */
  apply(entry: PresenceEntry): void {
    if (entry.operation !== "PUT") {
      this.#down(entry.key);
      return;
    }
    const before = this.#known.get(entry.key);
    // A re-created watch replays every entry: the same revision is no news.
    if (before?.revision === entry.revision) return;
    const checked = parsePresenceEntry(entry.key, entry.value, this.#prefix);
    if (!checked.ok) {
      this.#onInvalid(entry.key, checked.error);
      return;
    }
    const record = Object.freeze(checked.value);
    this.#known.set(entry.key, { record, revision: entry.revision });
    if (before === undefined) this.#onEvent({ type: "up", key: entry.key, instance: record });
    else if (JSON.stringify(before.record) !== JSON.stringify(record)) {
      this.#onEvent({ type: "update", key: entry.key, instance: record });
    }
  }

  /**
   * The bucket was created anew: its revisions start again, so an entry's revision no longer
   * tells whether it was seen. Entries replayed from then on are compared by their records.
   */
  forgetRevisions(): void {
    for (const entry of this.#known.values()) entry.revision = -1;
  }

  /**
   * Ends the snapshot of a new watch: whatever was reported before and is not among the keys
   * `present` in it (deleted, and its marker gone, while the watch was down) goes `down`.
   */
  reconcile(present: ReadonlySet<string>): void {
    for (const key of [...this.#known.keys()]) if (!present.has(key)) this.#down(key);
  }

  #down(key: string): void {
    const before = this.#known.get(key);
    // A delete marker of something never reported (in the snapshot, say) is no news.
    if (before === undefined) return;
    this.#known.delete(key);
    this.#onEvent({ type: "down", key, instance: before.record });
  }
}
