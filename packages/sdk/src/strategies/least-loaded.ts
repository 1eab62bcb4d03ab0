import type { InstanceRecord } from "@natsmesh/protocol";
import type { Load } from "./load-table.js";
import type { RandomSource } from "./random.js";

/** Where `least-loaded` reads loads from: a {@link LoadTable}, or a plain map in tests. */
export interface Loads {
  get(id: string): Readonly<Load> | undefined;
}

/** (in flight + 1) × latency EWMA; an instance this client has no data on scores 0. */
export function loadScore(load: Readonly<Load> | undefined): number {
  return load === undefined ? 0 : (load.inflight + 1) * load.ewma;
}

/**
 * `least-loaded`: the power of two choices. Two different candidates are drawn at random
 * (the first by one draw, the second by another over the rest), and the lower
 * {@link loadScore} wins; the first drawn on a tie. Needs at least two candidates.
 */
export function selectLeastLoaded(
  candidates: readonly InstanceRecord[],
  loads: Loads,
  random: RandomSource,
): InstanceRecord {
  const i = Math.floor(random() * candidates.length);
  let j = Math.floor(random() * (candidates.length - 1));
  if (j >= i) j++;
  const a = candidates[i]!;
  const b = candidates[j]!;
  return loadScore(loads.get(a.id)) <= loadScore(loads.get(b.id)) ? a : b;
}
