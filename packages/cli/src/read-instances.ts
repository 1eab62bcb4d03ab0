import type { NatsConnection } from "@nats-io/nats-core";
import type { InstanceRecord } from "@natsmesh/protocol";
import { keyFilter, openPresence } from "./presence-bucket.js";
import { decodePresenceEntry } from "./presence-entry.js";

/** Called for a key whose value is not a valid record; it is left out of the result. */
export type InvalidEntryHandler = (key: string, reason: string) => void;

/** Service, then instance id: the order `ls` prints in. */
export function byServiceThenId(a: InstanceRecord, b: InstanceRecord): number {
  return a.service.localeCompare(b.service) || a.id.localeCompare(b.id);
}

/**
 * Reads the current records of the presence bucket (of one `service`, or all), sorted by
 * service then id. Resolves `undefined` when the bucket does not exist yet.
 */
export async function readInstances(
  nc: NatsConnection,
  prefix: string,
  service: string | undefined,
  onInvalid: InvalidEntryHandler,
): Promise<InstanceRecord[] | undefined> {
  const open = await openPresence(nc, prefix, service);
  if (open === undefined) return undefined;
  if (open.keys === 0) return [];
  const keys: string[] = [];
  for await (const key of await open.kv.keys(keyFilter(service))) keys.push(key);
  const entries = await Promise.all(keys.map((key) => open.kv.get(key)));
  const records: InstanceRecord[] = [];
  for (const entry of entries) {
    // Deleted between listing and reading: simply gone.
    if (entry === null || entry.operation !== "PUT") continue;
    const decoded = decodePresenceEntry(entry.key, entry.value, prefix);
    if (decoded.ok) records.push(decoded.record);
    else onInvalid(entry.key, decoded.reason);
  }
  return records.sort(byServiceThenId);
}
