/** What this client knows of one instance's load: its own calls in flight and their latency. */
export interface Load {
  inflight: number;
  /** Exponentially weighted moving average of latency, ms; 0 until the first reply. */
  ewma: number;
  /** The instance went away while calls to it were in flight: drop it when they end. */
  gone: boolean;
}

/** Weight of the newest latency in the moving average. */
export const EWMA_ALPHA = 0.3;

/**
 * This client's calls in flight and latency per instance, for `least-loaded`. Bounded by the
 * live set: instances that go are forgotten once their calls end.
 */
export class LoadTable {
  readonly #loads = new Map<string, Load>();

  get(id: string): Readonly<Load> | undefined {
    return this.#loads.get(id);
  }

  get size(): number {
    return this.#loads.size;
  }

  /** A call to `id` started. */
  started(id: string): void {
    const load = this.#loads.get(id);
    if (load === undefined) this.#loads.set(id, { inflight: 1, ewma: 0, gone: false });
    else load.inflight++;
  }

  /** A call to `id` ended after `ms`. */
  finished(id: string, ms: number): void {
    const load = this.#loads.get(id);
    if (load === undefined) return;
    load.inflight--;
    if (load.gone && load.inflight <= 0) {
      this.#loads.delete(id);
      return;
    }
    load.ewma = load.ewma === 0 ? ms : load.ewma + EWMA_ALPHA * (ms - load.ewma);
  }

  /** `id` is gone: dropped now, or when its calls in flight end. */
  forget(id: string): void {
    const load = this.#loads.get(id);
    if (load === undefined) return;
    if (load.inflight <= 0) this.#loads.delete(id);
    else load.gone = true;
  }
}
