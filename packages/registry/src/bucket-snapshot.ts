import { createHash } from "node:crypto";
import type { KV } from "@nats-io/kv";
import { withTimeout } from "@natsmesh/protocol/internal";

/** A key's last entry in the presence bucket, as far as the leader knows it. */
export interface StoredEntry {
  /**
   * {@link valueDigest} of the value: enough to tell whether it is the one the leader wants
   * there, in 44 characters whatever the value, so a bucket full of foreign values costs the
   * leader their keys, not their values.
   */
  readonly digest: string;
  /** Its stream sequence: an older report of the key is no news. */
  readonly revision: number;
}

/** What the presence bucket holds, and how far the stream has gone. */
export interface BucketSnapshot {
  /** Keys whose last entry is a value. */
  readonly values: Map<string, StoredEntry>;
  /** Keys whose last entry is a delete or purge marker, with its revision. */
  readonly markers: Map<string, number>;
  /** The highest stream sequence accounted for; later changes come through the watch. */
  lastSeq: number;
}

/** SHA-256 of a value's bytes (a string as UTF-8), base64. */
export function valueDigest(value: Uint8Array | string): string {
  return createHash("sha256").update(value).digest("base64");
}

/**
 * Reads the last entry of every key of the presence bucket in one pass (an ordered consumer
 * over the stream, not a `get` per key), bounded by `timeoutMs`.
 */
export async function readBucket(kv: KV, timeoutMs: number): Promise<BucketSnapshot> {
  const what = "reading the presence bucket";
  const status = await withTimeout(kv.status(), timeoutMs, what);
  const out: BucketSnapshot = {
    values: new Map(),
    markers: new Map(),
    lastSeq: status.streamInfo.state.last_seq,
  };
  const entries = await withTimeout(kv.history(), timeoutMs, what);
  const read = async () => {
    // With history 1 each key has one message, but a delete marker may follow a put while
    // we read: the later entry wins.
    for await (const e of entries) {
      out.lastSeq = Math.max(out.lastSeq, e.revision);
      if (e.operation === "PUT") {
        out.values.set(e.key, { digest: valueDigest(e.value), revision: e.revision });
        out.markers.delete(e.key);
      } else {
        out.values.delete(e.key);
        out.markers.set(e.key, e.revision);
      }
    }
  };
  try {
    await withTimeout(read(), timeoutMs, what);
  } finally {
    entries.stop();
  }
  return out;
}
