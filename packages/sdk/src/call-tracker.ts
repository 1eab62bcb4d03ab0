import { settledWithin } from "@natsmesh/protocol/internal";

/** Counts calls from their start to their end, so `close()` can wait for all of them. */
export class CallTracker {
  #active = 0;
  #onIdle: (() => void) | undefined;

  get active(): number {
    return this.#active;
  }

  begin(): void {
    this.#active++;
  }

  end(): void {
    if (--this.#active === 0) this.#onIdle?.();
  }

  /** Resolves when no call is active, or after `timeoutMs`. */
  async idle(timeoutMs: number): Promise<void> {
    if (this.#active === 0) return;
    const idle = new Promise<void>((resolve) => {
      this.#onIdle = resolve;
    });
    await settledWithin(idle, timeoutMs);
    this.#onIdle = undefined;
  }
}
