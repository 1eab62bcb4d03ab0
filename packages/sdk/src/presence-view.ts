import type { KvWatchEntry } from "@nats-io/kv";
import {
  type InstanceRecord,
  MeshError,
  type PresenceKeys,
  parsePresenceEntry,
} from "@natsmesh/protocol";
import {
  type PresenceQuotas,
  QUOTA_EXCEEDED,
  resolvePresenceQuotas,
} from "@natsmesh/protocol/internal";

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

/** What a view checks beyond the record itself. */
export interface PresenceViewOptions {
  /** Registry keys: only records signed by one of them are taken. @default none: unchecked */
  keys?: PresenceKeys;
  /** @default {@link DEFAULT_PRESENCE_QUOTAS} */
  quotas?: PresenceQuotas;
}

/**
 * What a presence watch has reported, by key, so that it can tell `up` from `update`, report
 * `down` only for what it reported `up`, and stay quiet when a re-created watch replays
 * records it already reported. It holds at most the quotas' records: an entry that is invalid,
 * unsigned (with keys), too large, or new beyond a quota is left out and reported invalid, and
 * what it reported before stays. Pure: entries in, events out.
 */
export class PresenceView {
  readonly #prefix: string;
  readonly #onEvent: (event: PresenceWatchEvent) => void;
  readonly #onInvalid: (key: string, error: MeshError) => void;
  readonly #keys: PresenceKeys | undefined;
  readonly #quotas: Readonly<Required<PresenceQuotas>>;
  readonly #known = new Map<string, { record: InstanceRecord; revision: number }>();
  /** Instances kept per service, for the per-service quota. */
  readonly #perService = new Map<string, number>();

  constructor(
    prefix: string,
    onEvent: (event: PresenceWatchEvent) => void,
    onInvalid: (key: string, error: MeshError) => void,
    options: PresenceViewOptions = {},
  ) {
    this.#prefix = prefix;
    this.#onEvent = onEvent;
    this.#onInvalid = onInvalid;
    this.#keys = options.keys;
    this.#quotas = resolvePresenceQuotas(options.quotas, "quotas");
  }

  /** How many records it holds. */
  get size(): number {
    return this.#known.size;
  }

  /** Whether it holds a record for `key`. */
  has(key: string): boolean {
    return this.#known.has(key);
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
    const checked = parsePresenceEntry(entry.key, entry.value, this.#prefix, {
      maxBytes: this.#quotas.maxRecordBytes,
      ...(this.#keys === undefined ? {} : { keys: this.#keys }),
    });
    if (!checked.ok) {
      this.#onInvalid(entry.key, checked.error);
      return;
    }
    const record = Object.freeze(checked.value);
    if (before === undefined) {
      const refused = this.#overQuota(record.service);
      if (refused !== undefined) {
        this.#onInvalid(entry.key, refused);
        return;
      }
      this.#perService.set(record.service, (this.#perService.get(record.service) ?? 0) + 1);
    }
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

  #overQuota(service: string): MeshError | undefined {
    const { maxRecords, maxInstancesPerService } = this.#quotas;
    const why =
      this.#known.size >= maxRecords
        ? `${maxRecords} records are kept already (maxRecords)`
        : (this.#perService.get(service) ?? 0) >= maxInstancesPerService
          ? `${maxInstancesPerService} instances of ${service} are kept already (maxInstancesPerService)`
          : undefined;
    if (why === undefined) return undefined;
    return new MeshError("BAD_REQUEST", `presence entry over quota: ${why}`, {
      data: { reason: QUOTA_EXCEEDED },
    });
  }

  #down(key: string): void {
    const before = this.#known.get(key);
    // A delete marker of something never reported (in the snapshot, say) is no news.
    if (before === undefined) return;
    this.#known.delete(key);
    const { service } = before.record;
    const left = (this.#perService.get(service) ?? 1) - 1;
    if (left === 0) this.#perService.delete(service);
    else this.#perService.set(service, left);
    this.#onEvent({ type: "down", key, instance: before.record });
  }
}
