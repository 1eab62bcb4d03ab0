import { type InstanceRecord, parsePresenceKey, validateInstanceRecord } from "@natsmesh/protocol";

/** A KV value read back as an instance record, or why it is not one. */
export type DecodedEntry = { ok: true; record: InstanceRecord } | { ok: false; reason: string };

/**
 * Decodes the value at presence key `key`: JSON, a valid {@link InstanceRecord} for `prefix`,
 * and stored under its own `<service>.<id>`. Anyone with write access can put anything in the
 * bucket, so nothing is shown unchecked.
 */
export function decodePresenceEntry(key: string, value: Uint8Array, prefix: string): DecodedEntry {
  const parts = parsePresenceKey(key);
  if (parts === undefined) return { ok: false, reason: "the key is not <service>.<id>" };
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(value));
  } catch {
    return { ok: false, reason: "the value is not JSON" };
  }
  const checked = validateInstanceRecord(json, prefix);
  if (!checked.ok) return { ok: false, reason: checked.error.message };
  const { service, id } = checked.value;
  if (service !== parts.service || id !== parts.id) {
    return { ok: false, reason: `the record is for ${service}.${id}` };
  }
  return { ok: true, record: checked.value };
}
