import { type KV, Kvm } from "@nats-io/kv";
import { type NatsConnection, nuid } from "@nats-io/nats-core";
import { type InstanceRecord, presenceBucket, presenceKey, subjects } from "@natsmesh/protocol";

/** The `startedAt` of {@link instanceRecord}: fixed, so that a record built twice is equal. */
export const TEST_RECORD_STARTED_AT = Date.UTC(2025, 0, 1);

/**
 * A valid presence record of `service` in the mesh `prefix`, as an agent would announce it,
 * with `changes` applied: a new id unless `changes` names one, and the subject that id implies.
 */
export function instanceRecord(
  prefix: string,
  service: string,
  changes: Partial<InstanceRecord> = {},
): InstanceRecord {
  const id = changes.id ?? nuid.next();
  return {
    v: 1,
    id,
    service,
    version: "1.0.0",
    weight: 100,
    status: "ready",
    methods: ["say"],
    subject: subjects(prefix).instanceBase(service, id),
    host: "test-host",
    pid: 4242,
    metadata: {},
    startedAt: TEST_RECORD_STARTED_AT,
    ...changes,
  };
}

/**
 * A well-formed record of `billing` that no agent announced, as an attacker would write it
 * straight into the bucket: a weight of 10,000 (against the default 100) so that weighted
 * balancing would send it nearly every call, host `evil`, and `changes` applied.
 */
export function forgedRecord(
  prefix: string,
  id: string,
  changes: Partial<InstanceRecord> = {},
): InstanceRecord {
  return instanceRecord(prefix, changes.service ?? "billing", {
    id,
    version: "6.6.6",
    weight: 10_000,
    methods: ["pay"],
    host: "evil",
    pid: 1,
    startedAt: Date.now(),
    ...changes,
  });
}

/** Creates `<prefix>_presence` as a registry does (history 1), for tests that play the registry. */
export function createPresenceBucket(nc: NatsConnection, prefix: string): Promise<KV> {
  return new Kvm(nc).create(presenceBucket(prefix), { history: 1 });
}

/** Writes `record` at its key `<service>.<id>`, as the registry does. */
export async function putRecord(kv: KV, record: InstanceRecord): Promise<void> {
  await kv.put(presenceKey(record.service, record.id), JSON.stringify(record));
}
