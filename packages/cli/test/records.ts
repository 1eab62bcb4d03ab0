import { type KV, Kvm } from "@nats-io/kv";
import { type NatsConnection, nuid } from "@nats-io/nats-core";
import { type InstanceRecord, presenceBucket, presenceKey } from "@natsmesh/protocol";

/** Creates `<prefix>_presence` as a registry would (history 1). */
export function createPresenceBucket(nc: NatsConnection, prefix: string): Promise<KV> {
  return new Kvm(nc).create(presenceBucket(prefix), { history: 1 });
}

/** A valid record for `prefix`, as an agent would announce it. */
export function makeRecord(
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
    subject: `${prefix}.inst.${service}.${id}`,
    host: "test-host",
    pid: 4242,
    metadata: {},
    startedAt: Date.now(),
    ...changes,
  };
}

/** Writes `record` at its key `<service>.<id>`, as the registry does. */
export async function putRecord(kv: KV, record: InstanceRecord): Promise<void> {
  await kv.put(presenceKey(record.service, record.id), JSON.stringify(record));
}
