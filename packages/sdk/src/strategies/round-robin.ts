import type { InstanceRecord } from "@natsmesh/protocol";

function byId(a: InstanceRecord, b: InstanceRecord): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * `round-robin`: the candidate whose turn it is, counting `turn` (0, 1, 2, … per service) over
 * the candidates in id order, so turns are exact whatever order presence arrived in. Puts
 * `candidates`, a list made for this pick, in that order.
 */
export function selectRoundRobin(candidates: InstanceRecord[], turn: number): InstanceRecord {
  candidates.sort(byId);
  return candidates[turn % candidates.length]!;
}
