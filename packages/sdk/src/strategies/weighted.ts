import type { InstanceRecord } from "@natsmesh/protocol";
import type { RandomSource } from "./random.js";

/**
 * `weighted`: a candidate with probability proportional to its `weight`. The random point is
 * laid over the weights in candidate order: with weights 1, 1, 2, a point in [0, 0.25) picks
 * the first, [0.25, 0.5) the second, [0.5, 1) the third.
 */
export function selectWeighted(
  candidates: readonly InstanceRecord[],
  random: RandomSource,
): InstanceRecord {
  let total = 0;
  for (const r of candidates) total += r.weight;
  let point = random() * total;
  for (const r of candidates) {
    point -= r.weight;
    if (point < 0) return r;
  }
  return candidates[candidates.length - 1]!;
}
