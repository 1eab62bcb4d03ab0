import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { type EventsOverview, readEventsOverview } from "@natsmesh/protocol/internal";
import type { Logger } from "pino";

/** How often the consumer groups are read from JetStream. */
export const EVENT_METRICS_INTERVAL_MS = 5000;

/**
 * Reads the event streams' consumer groups and dead letters every few seconds, so a scrape of
 * `/metrics` is served from memory and costs JetStream nothing, however often it comes.
 */
export class EventMetrics {
  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #log: Logger;
  #jsm: JetStreamManager | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reading = false;
  #last: EventsOverview | undefined;

  constructor(nc: NatsConnection, prefix: string, log: Logger) {
    this.#nc = nc;
    this.#prefix = prefix;
    this.#log = log;
  }

  /** The last reading; `undefined` before the first one or while JetStream cannot be read. */
  get overview(): EventsOverview | undefined {
    return this.#last;
  }

  start(): void {
    void this.#read();
    this.#timer = setInterval(() => void this.#read(), EVENT_METRICS_INTERVAL_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async #read(): Promise<void> {
    if (this.#reading || this.#nc.isClosed()) return;
    this.#reading = true;
    try {
      this.#jsm ??= await jetstreamManager(this.#nc, { checkAPI: false });
      this.#last = await readEventsOverview(this.#jsm, this.#prefix);
    } catch (err) {
      // Stale numbers would mislead: report none until JetStream answers again.
      this.#last = undefined;
      this.#log.debug({ err }, "event metrics not read");
    } finally {
      this.#reading = false;
    }
  }
}
