import type { NatsConnection } from "@nats-io/nats-core";
import { type InstanceRecord, type MeshError, SignatureProblem } from "@natsmesh/protocol";
import { QUOTA_EXCEEDED, settledWithin, ThrottledLog } from "@natsmesh/protocol/internal";
import type { Logger } from "pino";
import { type LoadedPresenceKeys, loadPresenceKeys } from "./presence-keys.js";
import type { ResolvedPresenceOptions } from "./presence-options.js";
import { type ReadyWait, ReadyWaits } from "./presence-ready.js";
import type { PresenceWatchEvent } from "./presence-view.js";
import { type PresenceWatch, watchPresence } from "./presence-watch.js";

/** A change of the presence view. */
export interface PresenceEvent {
  type: "up" | "update" | "down";
  instance: InstanceRecord;
}

/** Records of `<P>_presence` the presence view left out, by why (counted since start). */
export interface PresenceStats {
  /** Instances in the view. */
  readonly instances: number;
  /** Entries that are not a valid record of the instance their key names. */
  readonly invalid: number;
  /** Entries larger than `maxRecordBytes`, refused before decoding. */
  readonly tooLarge: number;
  /** With `presence.keys`: records without a signature. */
  readonly unsigned: number;
  /** With `presence.keys`: records whose signature is wrong or by an unknown key. */
  readonly badSignature: number;
  /** New instances beyond `maxRecords` or `maxInstancesPerService`. */
  readonly overQuota: number;
}

/** How long calls wait at most for the first snapshot before they fall back to the queue subject. */
const SNAPSHOT_WAIT_MS = 250;

type Ignored = Omit<PresenceStats, "instances">;

function ignoredAs(err: MeshError): keyof Ignored {
  const reason = (err.data as { reason?: unknown } | undefined)?.reason;
  if (reason === SignatureProblem.unsigned) return "unsigned";
  if (reason === SignatureProblem.invalid) return "badSignature";
  if (reason === QUOTA_EXCEEDED) return "overQuota";
  if (reason === "too-large") return "tooLarge";
  return "invalid";
}

/**
 * The SDK's view of `<P>_presence`: what {@link watchPresence} reports, kept in memory by
 * service, bounded by the quotas. With keys, only records a registry signed are taken.
 * Instances a call found dead are hidden until their record changes.
 */
export class PresenceCache {
  readonly #services = new Map<string, Map<string, InstanceRecord>>();
  readonly #down = new Set<string>();
  readonly #listeners = new Set<(event: PresenceEvent) => void>();
  readonly #watch: PresenceWatch;
  readonly #keySource: LoadedPresenceKeys | undefined;
  readonly #readiness = new ReadyWaits((service) =>
    this.live(service).some((r) => r.status === "ready"),
  );
  readonly #ignored: { -readonly [K in keyof Ignored]: number } = {
    invalid: 0,
    tooLarge: 0,
    unsigned: 0,
    badSignature: 0,
    overQuota: 0,
  };
  #size = 0;
  #ready = false;
  #setFirstView!: () => void;
  readonly #firstView = new Promise<void>((resolve) => {
    this.#setFirstView = resolve;
  });

  /**
   * Loads the keys, when there are any (a missing key file is a `TypeError`), and starts
   * watching.
   */
  static async open(
    nc: NatsConnection,
    prefix: string,
    log: Logger,
    settings: ResolvedPresenceOptions,
  ): Promise<PresenceCache> {
    if (settings.keys === undefined) return new PresenceCache(nc, prefix, log, settings);
    let cache: PresenceCache | undefined;
    const loaded = await loadPresenceKeys(nc, prefix, settings.keys, {
      onChange: (size) => {
        log.info({ keys: size }, "presence keys loaded");
        // Entries refused under the old keys may verify now: read the bucket again.
        if (cache !== undefined) cache.#watch.rewatch();
      },
      onError: (err) => log.error({ err }, "presence key set update refused"),
    });
    log.info({ keys: loaded.keys.size }, "presence keys loaded");
    cache = new PresenceCache(nc, prefix, log, settings, loaded);
    return cache;
  }

  private constructor(
    nc: NatsConnection,
    prefix: string,
    log: Logger,
    settings: ResolvedPresenceOptions,
    loaded?: LoadedPresenceKeys,
  ) {
    this.#keySource = loaded;
    const keys = loaded?.keys;
    const throttled = new ThrottledLog(log);
    this.#watch = watchPresence(nc, {
      prefix,
      quotas: settings.quotas,
      ...(keys === undefined ? {} : { keys }),
      onEvent: (event) => this.#apply(event),
      onInvalid: (key, err) => {
        const why = ignoredAs(err);
        this.#ignored[why]++;
        throttled.warn(
          why,
          { key, err, ignored: this.#ignored[why] },
          "ignoring a presence record",
        );
      },
      onStatus: (status) => {
        if (status.type === "error") {
          log.debug({ err: status.error }, "presence watch failed; retrying");
          this.#readiness.failed(status.error);
        } else {
          // A missing bucket holds nothing to wait for: the view (empty) is as current as it gets.
          this.#readiness.settle();
        }
        // An empty view is still a view: calls must not wait for a bucket that is not there.
        this.#setReady();
      },
    });
  }

  /** True once the first snapshot is in (or there was nothing to load). */
  get ready(): boolean {
    return this.#ready;
  }

  /**
   * `mesh.ready()`: resolves once the first snapshot is in or the bucket was found missing (and,
   * with a service, once a ready instance of it is in the view); see {@link ReadyWaits}.
   */
  settled(o: ReadyWait): Promise<void> {
    return this.#readiness.wait(o);
  }

  /** Rejects pending and later {@link PresenceCache.settled} waits: the mesh is closing. */
  closeWaits(): void {
    this.#readiness.close();
  }

  /**
   * Resolves once the first snapshot is in, or after a short bound: a call never waits long for
   * presence, it falls back to the queue subject instead.
   */
  async whenReady(maxWaitMs = SNAPSHOT_WAIT_MS): Promise<void> {
    if (!this.#ready) await settledWithin(this.#firstView, maxWaitMs);
  }

  /** Every known instance of `service` (or of all services), including draining ones. */
  instances(service?: string): InstanceRecord[] {
    if (service !== undefined) return [...(this.#services.get(service)?.values() ?? [])];
    return [...this.#services.values()].flatMap((m) => [...m.values()]);
  }

  /**
   * Instances of `service` not found dead by a call, whatever their status: the balancer's
   * filters decide which may take a call.
   */
  live(service: string): InstanceRecord[] {
    const byId = this.#services.get(service);
    if (byId === undefined) return [];
    const out: InstanceRecord[] = [];
    for (const r of byId.values()) if (!this.#down.has(r.id)) out.push(r);
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

  /** What the view holds and what it left out. */
  stats(): PresenceStats {
    return { instances: this.#size, ...this.#ignored };
  }

  stop(): void {
    this.#readiness.close();
    this.#watch.stop();
    this.#keySource?.stop();
    this.#setReady();
  }

  #apply({ type, instance }: PresenceWatchEvent): void {
    const { service, id } = instance;
    let byId = this.#services.get(service);
    if (type === "down") {
      if (byId?.delete(id)) this.#size--;
      if (byId?.size === 0) this.#services.delete(service);
      // Already reported down when a call found it dead.
      if (!this.#down.delete(id)) this.#emit({ type, instance });
      return;
    }
    if (byId === undefined) {
      byId = new Map();
      this.#services.set(service, byId);
    }
    if (!byId.has(id)) this.#size++;
    byId.set(id, instance);
    // Found dead by a call and now changed: it is back.
    this.#emit({ type: this.#down.delete(id) ? "up" : type, instance });
    this.#readiness.changed(service);
  }

  #emit(event: PresenceEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  #setReady(): void {
    if (this.#ready) return;
    this.#ready = true;
    this.#setFirstView();
  }
}
