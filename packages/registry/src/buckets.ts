import { jetstream } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { MeshError, presenceBucket, registryBucket } from "@natsmesh/protocol";

/** The two buckets a registry works with. */
export interface RegistryBuckets {
  /** `<P>_presence`: `<service>.<id>` → InstanceRecord JSON. */
  presence: KV;
  /** `<P>_registry`: the `leader` lease (and, later, `jwks`), with short request timeouts. */
  registry: KV;
}

/**
 * Opens `<P>_presence` and `<P>_registry`, creating them when missing (history 1, file storage,
 * `replicas`). An existing bucket is used as it is, whatever its settings. Failure (no
 * JetStream, no quorum) is an `UNAVAILABLE` `MeshError`.
 *
 * Lease requests on `<P>_registry` time out after `leaseTimeoutMs`: a request lost in a
 * disconnect would otherwise hold up every lease step for nats.js' default 5 s, longer than a
 * whole lease.
 */
export async function openBuckets(
  nc: NatsConnection,
  prefix: string,
  replicas: number,
  leaseTimeoutMs: number,
): Promise<RegistryBuckets> {
  try {
    const [presence] = await Promise.all([
      ensureBucket(nc, "presence", prefix, replicas),
      ensureBucket(nc, "registry", prefix, replicas),
    ]);
    const registry = await new Kvm(jetstream(nc, { timeout: leaseTimeoutMs })).open(
      registryBucket(prefix),
    );
    return { presence, registry };
  } catch (err) {
    throw new MeshError("UNAVAILABLE", "the registry could not open its KV buckets", {
      cause: err,
    });
  }
}

/**
 * Opens one of the registry's buckets, creating it when missing (history 1, file storage,
 * `replicas`): on start, and when someone deleted it. An existing bucket is used as it is.
 */
export async function ensureBucket(
  nc: NatsConnection,
  which: "presence" | "registry",
  prefix: string,
  replicas: number,
): Promise<KV> {
  const kvm = new Kvm(nc);
  const name = which === "presence" ? presenceBucket(prefix) : registryBucket(prefix);
  // A fresh copy per call: nats.js writes `allow_direct` into the options it is given.
  const opts = () =>
    ({ history: 1, storage: "file", replicas, description: `natsmesh ${which}` }) as const;
  try {
    return await kvm.create(name, opts());
  } catch {
    // Registries starting together race to create the stream; the loser finds it on a
    // second look. A real failure fails again and is reported then.
    return await kvm.create(name, opts());
  }
}
