import type { InstanceRecord } from "@natsmesh/protocol";

/** Uniform numbers in [0, 1): `Math.random`, or a scripted or seeded source in tests. */
export type RandomSource = () => number;

/** `random`: any candidate, uniformly. */
export function selectRandom(
  candidates: readonly InstanceRecord[],
  random: RandomSource,
): InstanceRecord {
  return candidates[Math.floor(random() * candidates.length)]!;
}
