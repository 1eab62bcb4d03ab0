import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "pino";
import type { Counters } from "./stats.js";

/** At most one sync triggered by unknown heartbeats per this many ms. */
export const SYNC_MIN_INTERVAL_MS = 1000;

export interface SyncPublisherOptions {
  connection: NatsConnection;
  /** `P.presence.sync` */
  subject: string;
  counters: Counters;
  log: Logger;
}

/**
 * Publishes `P.presence.sync`. Every agent of the mesh answers one with an `up`, so the ones
 * triggered by heartbeats of unknown instances are rate-limited: a thousand unknown
 * instances (a registry just started) cost one sync per second, not a thousand.
 */
export class SyncPublisher {
  readonly #o: SyncPublisherOptions;
  #last = Number.NEGATIVE_INFINITY;

  constructor(options: SyncPublisherOptions) {
    this.#o = options;
  }

  /** Publishes unless a sync went out within {@link SYNC_MIN_INTERVAL_MS}. */
  request(): void {
    if (performance.now() - this.#last >= SYNC_MIN_INTERVAL_MS) this.publish();
  }

  /** Publishes now, whatever the rate: on taking the lead and after a reconnect. */
  publish(): void {
    const nc = this.#o.connection;
    this.#last = performance.now();
    if (nc.isClosed()) return;
    try {
      nc.publish(this.#o.subject);
      this.#o.counters.syncs++;
      this.#o.log.debug("published presence sync");
    } catch (err) {
      this.#o.log.warn({ err }, "presence sync could not be published");
    }
  }
}
