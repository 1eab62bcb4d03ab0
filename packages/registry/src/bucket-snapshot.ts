import type { KV } from "@nats-io/kv";
import { withTimeout } from "@natsmesh/protocol/internal";
import { canonicalStored } from "./canonical-record.js";

/** What a presence bucket holds: key → canonical record JSON, `undefined` for an invalid value. */
export type BucketSnapshot = Map<string, string | undefined>;

/**
 * Reads the current value of every key of the presence bucket in one pass (an ordered
 * consumer over the stream, not a `get` per key), bounded by `timeoutMs`.
 */
export async function readBucket(
  kv: KV,
  prefix: string,
  timeoutMs: number,
): Promise<BucketSnapshot> {
  const what = "reading the presence bucket";
  const entries = await withTimeout(kv.history(), timeoutMs, what);
  const out: BucketSnapshot = new Map();
  const read = async () => {
    // With history 1 each key has one message, but a delete marker may follow a put while
    // we read: the later entry wins.
    for await (const e of entries) {
      if (e.operation === "PUT") out.set(e.key, canonicalStored(e.key, e.value, prefix));
      else out.delete(e.key);
    }
  };
  try {
    await withTimeout(read(), timeoutMs, what);
  } finally {
    entries.stop();
  }
  return out;
}
