import type { NatsConnection } from "@nats-io/nats-core";
import type { InstanceRecord } from "@natsmesh/protocol";
import { settledWithin } from "@natsmesh/protocol/internal";
import type { Logger } from "pino";
import type { PresenceWatchEvent } from "./presence-view.js";
import { type PresenceWatch, watchPresence } from "./presence-watch.js";

/** A change of the presence view. */
export interface PresenceEvent {
  type: "up" | "update" | "down";
  instance: InstanceRecord;
}

/** How long calls wait at most for the first snapshot before they fall back to the queue subject. */
const SNAPSHOT_WAIT_MS = 250;

/**
 * The SDK's view of `<P>_presence`: what {@link watchPresence} reports, kept in memory by
 * service. Instances a call found dead are hidden until their record changes.
 */
export class PresenceCache {
  readonly #services = new Map<string, Map<string, InstanceRecord>>();
  readonly #down = new Set<string>();
  readonly #listeners = new Set<(event: PresenceEvent) => void>();
  readonly #watch: PresenceWatch;
  #ready = false;
  #setFirstView!: () => void;
  readonly #firstView = new Promise<void>((resolve) => {
    this.#setFirstView = resolve;
  });

  constructor(nc: NatsConnection, prefix: string, log: Logger) {
    this.#watch = watchPresence(nc, {
      prefix,
      onEvent: (event) => this.#apply(event),
      onInvalid: (key, err) => log.warn({ key, err }, "ignoring an invalid presence record"),
      onStatus: (status) => {
        if (status.type === "error") {
          log.debug({ err: status.error }, "presence watch failed; retrying");
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

  stop(): void {
    this.#watch.stop();
    this.#setReady();
  }

  #apply({ type, instance }: PresenceWatchEvent): void {
    const { service, id } = instance;
    let byId = this.#services.get(service);
    if (type === "down") {
      byId?.delete(id);
      if (byId?.size === 0) this.#services.delete(service);
      // Already reported down when a call found it dead.
      if (!this.#down.delete(id)) this.#emit({ type, instance });
      return;
    }
    if (byId === undefined) {
      byId = new Map();
      this.#services.set(service, byId);
    }
    byId.set(id, instance);
    // Found dead by a call and now changed: it is back.
    this.#emit({ type: this.#down.delete(id) ? "up" : type, instance });
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
