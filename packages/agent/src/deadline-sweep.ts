import type { Call } from "./call.js";

/** How often the calls in flight are checked against their deadlines. */
const SWEEP_MS = 25;
/** Sweeps with nothing in flight before the timer stops. */
const IDLE_SWEEPS = 40;
/**
 * How long a handler may take to settle once its deadline passed and `ctx.signal` aborted.
 * One that watches the signal settles at once; one still running after this is a runaway.
 */
export const RUNAWAY_GRACE_MS = 250;

/**
 * Holds every call to its deadline on one shared timer that runs only while calls are in
 * flight (no timer per call): at the deadline it aborts the call's signal, and once the grace
 * has passed too it hands the call to `onRunaway`, which takes its slot back.
 */
export class DeadlineSweep {
  readonly #inflight: ReadonlySet<Call>;
  readonly #onRunaway: (call: Call) => void;
  #timer: NodeJS.Timeout | undefined;
  #idleSweeps = 0;

  constructor(inflight: ReadonlySet<Call>, onRunaway: (call: Call) => void) {
    this.#inflight = inflight;
    this.#onRunaway = onRunaway;
  }

  /** A call started: make sure the timer runs. */
  start(): void {
    this.#idleSweeps = 0;
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#sweep(), SWEEP_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #sweep(): void {
    if (this.#inflight.size === 0) {
      if (++this.#idleSweeps >= IDLE_SWEEPS) this.stop();
      return;
    }
    const now = Date.now();
    for (const call of this.#inflight) {
      if (now < call.deadline) continue;
      if (now >= call.deadline + RUNAWAY_GRACE_MS) this.#onRunaway(call);
      else call.abortForDeadline();
    }
  }
}
