/** Share of the limits the load must fall to before a saturated instance is ready again. */
const LOW_WATER = 0.75;
/** Heartbeats a saturated status holds at least, so the record does not flap. */
const HOLD_HEARTBEATS = 2;

/**
 * Whether an instance is saturated, with hysteresis: it becomes saturated as soon as a call
 * finds no room (no slot, or no in-flight bytes), and ready again only at a heartbeat when
 * the load is down to 3/4 of both limits and it has been saturated for two heartbeats. Each
 * change is one record write in KV, so the status never flaps faster than that.
 */
export class Saturation {
  readonly #holdMs: number;
  readonly #onChange: () => void;
  #saturated = false;
  #since = 0;

  constructor(heartbeatMs: number, onChange: () => void) {
    this.#holdMs = heartbeatMs * HOLD_HEARTBEATS;
    this.#onChange = onChange;
  }

  get saturated(): boolean {
    return this.#saturated;
  }

  /** A call was refused for want of room. */
  full(): void {
    if (this.#saturated) return;
    this.#saturated = true;
    this.#since = Date.now();
    this.#onChange();
  }

  /** At each heartbeat, with the load as shares of the limits (1 = full). */
  tick(slots: number, bytes: number): void {
    if (!this.#saturated) {
      if (slots >= 1 || bytes >= 1) this.full();
      return;
    }
    if (slots > LOW_WATER || bytes > LOW_WATER || Date.now() - this.#since < this.#holdMs) return;
    this.#saturated = false;
    this.#onChange();
  }
}
