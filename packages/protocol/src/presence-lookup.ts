import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import {
  type InstanceRecord,
  parsePresenceEntry,
  presenceBucket,
  presenceKey,
} from "./presence.js";

/** What the presence bucket holds for one instance. */
export type PresenceLookup =
  /** The bucket does not exist: no registry ever ran for the prefix. */
  | { bucket: false }
  /** The bucket exists; `record` is the instance's valid record, if it holds one. */
  | { bucket: true; record: InstanceRecord | undefined };

/**
 * Reads the one key `<service>.<id>` of `<prefix>_presence` (its last message, so no watch and
 * no consumer). A deleted or purged key, or a value that is not a valid record of that
 * instance, counts as absent. Rejects when JetStream cannot be asked (off, or the server away).
 */
export async function lookupPresence(
  nc: NatsConnection,
  prefix: string,
  service: string,
  id: string,
): Promise<PresenceLookup> {
  const bucket = presenceBucket(prefix);
  const key = presenceKey(service, id);
  const jsm = await jetstreamManager(nc);
  let stored: Awaited<ReturnType<typeof jsm.streams.getMessage>>;
  try {
    stored = await jsm.streams.getMessage(`KV_${bucket}`, { last_by_subj: `$KV.${bucket}.${key}` });
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) {
      return { bucket: false };
    }
    throw err;
  }
  // A delete or purge is a marker message with this header and no value.
  if (stored === null || stored.header?.get("KV-Operation"))
    return { bucket: true, record: undefined };
  const entry = parsePresenceEntry(key, stored.data, prefix);
  return { bucket: true, record: entry.ok ? entry.value : undefined };
}
