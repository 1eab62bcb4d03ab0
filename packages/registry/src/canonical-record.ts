import type { InstanceRecord } from "@natsmesh/protocol";

/**
 * The JSON the registry writes for a record, and compares to decide whether an `up` changed
 * anything. The validated record already has a fixed field order; only metadata keys keep the
 * sender's order, so they are sorted: `{a,b}` and `{b,a}` are the same record.
 */
export function canonicalRecord(record: InstanceRecord): string {
  const sorted = Object.entries(record.metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify({ ...record, metadata: Object.fromEntries(sorted) });
}
