import { jetstream, StorageType } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { presenceBucket } from "@natsmesh/protocol";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import {
  cleanup,
  heapAfterGcMiB as heapMiB,
  presenceFlood,
  setup,
  type TestSetup,
  uniquePrefix,
  waitUntil,
} from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Without quotas, 50,000 fake ids written into <P>_presence grew the SDK to ~115 MB. The
// presence view keeps at most its quotas, whatever the bucket holds.

/** Far above what the kept records cost (1 MiB), below what 50,000 cost without quotas (25 MiB). */
const HEAP_BOUND_MIB = 16;

let t: TestSetup;
beforeAll(async () => {
  t = await setup();
});
afterAll(() => cleanup(t));

/** Writes `count` fake records straight into a fresh (in-memory) presence bucket, pipelined. */
async function stuff(prefix: string, count: number, services: number, big = false): Promise<void> {
  const bucket = presenceBucket(prefix);
  await new Kvm(t.nc).create(bucket, { history: 1, storage: StorageType.Memory });
  const js = jetstream(t.nc);
  for (const records of presenceFlood(prefix, { count, services, big, batch: big ? 200 : 2000 })) {
    await Promise.all(
      records.map((r) => js.publish(`$KV.${bucket}.${r.service}.${r.id}`, JSON.stringify(r))),
    );
  }
}

/** Connects a mesh to `prefix` and waits until its view has looked at `count` entries. */
async function viewOf(prefix: string, count: number, quotas: object): Promise<Mesh> {
  const mesh = await connectMesh({ servers: t.server.url, prefix, presence: quotas });
  const s = () => mesh.presenceStats();
  const done = await waitUntil(() => s().instances + s().overQuota + s().tooLarge >= count, {
    timeoutMs: 120_000,
    intervalMs: 50,
  });
  expect(done, `the view looked at ${JSON.stringify(s())} of ${count}`).toBe(true);
  return mesh;
}

describe("presence quotas in the SDK", () => {
  it("50,000 fake ids in the bucket: the view holds maxRecords, the rest is counted", async () => {
    const prefix = uniquePrefix("squota");
    await stuff(prefix, 50_000, 100);
    const before = heapMiB();
    const started = performance.now();
    const mesh = await viewOf(prefix, 50_000, { maxRecords: 1000, maxInstancesPerService: 200 });
    try {
      const took = Math.round(performance.now() - started);
      expect(mesh.presenceStats()).toMatchObject({
        instances: 1000,
        overQuota: 49_000,
        invalid: 0,
      });
      expect(mesh.instances().length).toBe(1000);
      const grew = heapMiB() - before;
      console.info(
        `[quota] SDK, 50,000 fake ids read in ${took} ms: 1000 kept, heap +${grew.toFixed(1)} MiB`,
      );
      expect(grew).toBeLessThan(HEAP_BOUND_MIB);
    } finally {
      await cleanup(mesh);
    }
  });

  it("6,000 records of 25 KB: none is decoded or kept, each is counted", async () => {
    const prefix = uniquePrefix("squotab");
    await stuff(prefix, 6000, 10, true);
    const before = heapMiB();
    const started = performance.now();
    const mesh = await viewOf(prefix, 6000, {});
    try {
      const took = Math.round(performance.now() - started);
      expect(mesh.presenceStats()).toMatchObject({ instances: 0, tooLarge: 6000 });
      const grew = heapMiB() - before;
      console.info(
        `[quota] SDK, 6,000 records of 25 KB read in ${took} ms: 0 kept, heap +${grew.toFixed(1)} MiB`,
      );
      expect(grew).toBeLessThan(HEAP_BOUND_MIB);
    } finally {
      await cleanup(mesh);
    }
  });
});
