import type { InstanceRecord } from "@natsmesh/protocol";

/** A change of the live set: an instance came up, changed its record, or went down. */
export interface PresenceChange {
  type: "up" | "update" | "down";
  /** The record; for `down`, the last one known. */
  instance: InstanceRecord;
  /** For `update`: the record before, so a reader can tell what changed. */
  previous?: InstanceRecord;
}

/**
 * Where the dashboard learns which instances are alive. The host provides it: the registry
 * from its in-memory instance table, `natsmesh dashboard` from a watch of the presence bucket.
 * Records are validated by the host; the dashboard still treats their strings as text only.
 */
export interface PresenceSource {
  /** Every live instance now. */
  snapshot(): readonly InstanceRecord[];
  /** Calls `listener` on every change until the returned function is called. */
  subscribe(listener: (change: PresenceChange) => void): () => void;
}
