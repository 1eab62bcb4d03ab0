import type { InstanceRecord } from "@natsmesh/protocol";
import { candidates, type InstanceFilter, VersionMatcher } from "./filters.js";
import { selectLeastLoaded } from "./strategies/least-loaded.js";
import { LoadTable } from "./strategies/load-table.js";
import { type RandomSource, selectRandom } from "./strategies/random.js";
import { selectRoundRobin } from "./strategies/round-robin.js";
import { selectWeighted } from "./strategies/weighted.js";

/** Balancing strategy of a call: `queue` lets NATS pick; the others pick from presence. */
export const Balance = {
  queue: "queue",
  random: "random",
  weighted: "weighted",
  roundRobin: "round-robin",
  leastLoaded: "least-loaded",
} as const;
export type Balance = (typeof Balance)[keyof typeof Balance];

/** Throws `TypeError` unless `balance` names a strategy. */
export function checkBalance(balance: unknown): Balance {
  if (typeof balance !== "string" || !Object.values(Balance).includes(balance as Balance)) {
    throw new TypeError(
      `balance must be one of ${Object.values(Balance).join(", ")}, got ${String(balance)}`,
    );
  }
  return balance as Balance;
}

/**
 * Picks an instance for a call: the {@link candidates} of the filter, then the strategy's
 * `select()` over this client's state (round-robin turns per service, loads for least-loaded)
 * and the random source. Returns `undefined` when nothing matches, and the caller uses the
 * queue subject.
 */
export class Balancer {
  readonly #random: RandomSource;
  readonly #turns = new Map<string, number>();
  readonly #loads = new LoadTable();
  readonly #versions = new VersionMatcher();

  /** @param random uniform numbers in [0, 1); tests give a scripted one. */
  constructor(random: RandomSource = Math.random) {
    this.#random = random;
  }

  pick(
    strategy: Exclude<Balance, "queue">,
    service: string,
    method: string,
    live: readonly InstanceRecord[],
    filter: InstanceFilter,
    exclude: ReadonlySet<string> | undefined,
  ): InstanceRecord | undefined {
    const list = candidates(live, method, filter, exclude, this.#versions);
    if (list.length <= 1) return list[0];
    switch (strategy) {
      case "random":
        return selectRandom(list, this.#random);
      case "weighted":
        return selectWeighted(list, this.#random);
      case "round-robin": {
        const turn = this.#turns.get(service) ?? 0;
        this.#turns.set(service, turn + 1);
        return selectRoundRobin(list, turn);
      }
      case "least-loaded":
        return selectLeastLoaded(list, this.#loads, this.#random);
    }
  }

  /** A call to instance `id` started (for least-loaded). */
  started(id: string): void {
    this.#loads.started(id);
  }

  /** A call to instance `id` ended after `ms`. */
  finished(id: string, ms: number): void {
    this.#loads.finished(id, ms);
  }

  /** Instance `id` is gone: its load is forgotten, so the table stays bounded by the live set. */
  forget(id: string): void {
    this.#loads.forget(id);
  }
}
