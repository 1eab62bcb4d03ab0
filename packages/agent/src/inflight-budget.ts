import { MeshError } from "@natsmesh/protocol";

/** What one decoded value costs at least in memory (an empty object is ~56 bytes in V8). */
export const ELEMENT_COST = 64;
/** What a call waiting for its token verification holds besides its payload. */
export const PENDING_COST = 1024;

/**
 * The memory the requests in flight hold, kept below `maxInflightBytes`: a running call is
 * charged its payload plus {@link ELEMENT_COST} per value it decodes to, a call waiting for its
 * token its payload plus {@link PENDING_COST}. Plain counters: nothing per request but additions.
 */
export class InflightBudget {
  /** Bytes charged to requests in flight now. */
  bytes = 0;
  readonly #max: number;

  constructor(maxInflightBytes: number) {
    this.#max = maxInflightBytes;
  }

  /**
   * Charges `cost` and returns `undefined`, or returns the error to answer when it does not
   * fit: `OVERLOADED` while others hold the budget, `PAYLOAD_TOO_LARGE` when it never could.
   */
  take(cost: number): MeshError | undefined {
    if (this.bytes + cost <= this.#max) {
      this.bytes += cost;
      return undefined;
    }
    if (cost > this.#max) {
      return new MeshError(
        "PAYLOAD_TOO_LARGE",
        `the request needs ${cost} bytes in flight, more than the agent's maxInflightBytes of ${this.#max}`,
        { data: { size: cost, maxInflightBytes: this.#max } },
      );
    }
    return new MeshError(
      "OVERLOADED",
      `instance holds its limit of ${this.#max} bytes of requests in flight`,
    );
  }

  /** Returns what {@link take} charged. */
  give(cost: number): void {
    this.bytes -= cost;
  }
}
