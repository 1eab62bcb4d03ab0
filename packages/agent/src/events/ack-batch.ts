import type { JsMsg } from "@nats-io/jetstream";

/**
 * Acknowledgements sent together once per turn of the event loop. Handlers finish in their own
 * promise chains; acked one by one, each ack became its own socket write (nats.js flushes on a
 * microtask after the first publish into an empty buffer), which cost more than the handling.
 */
export class AckBatch {
  #pending: JsMsg[] = [];
  #scheduled = false;

  ack(m: JsMsg): void {
    this.#pending.push(m);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.flush);
  }

  /** Sends what is pending now (also before a stop). */
  readonly flush = (): void => {
    this.#scheduled = false;
    const pending = this.#pending;
    this.#pending = [];
    for (const m of pending) m.ack();
  };
}
