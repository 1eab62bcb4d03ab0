import type { InstanceRecord } from "@natsmesh/protocol";
import type { RandomSource } from "@natsmesh/sdk/internal";
import { instanceRecord } from "@natsmesh/testing";

/** A valid record of `service` (default `echo`) in the mesh `mesh`, with `changes` applied. */
export function record(id: string, changes: Partial<InstanceRecord> = {}): InstanceRecord {
  return instanceRecord("mesh", changes.service ?? "echo", { id, ...changes });
}

/**
 * A random source that returns `values` in turn and fails the test when asked for more, so a
 * test states exactly which draws a pick makes.
 */
export function scripted(...values: number[]): RandomSource & { readonly left: number } {
  const queue = [...values];
  const next = () => {
    const value = queue.shift();
    if (value === undefined)
      throw new Error("the random source was asked more often than scripted");
    return value;
  };
  return Object.defineProperty(next, "left", { get: () => queue.length }) as RandomSource & {
    readonly left: number;
  };
}

/** The ids of `records`, for compact assertions. */
export function ids(records: readonly InstanceRecord[]): string[] {
  return records.map((r) => r.id);
}
