import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { startAgent } from "@natsmesh/agent";
import { presenceBucket, registryBucket } from "@natsmesh/protocol";
import { startRegistry } from "@natsmesh/registry";
import { type NatsCluster, startNatsCluster, uniquePrefix } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let cluster: NatsCluster;

beforeAll(async () => {
  cluster = await startNatsCluster({ size: 3 });
});
afterAll(async () => {
  await cluster?.dispose();
});

describe("on a 3-node cluster", () => {
  it("creates replicated buckets, leads and publishes presence", async () => {
    const prefix = uniquePrefix("c");
    const urls = cluster.urls;
    await using a = await startRegistry({ servers: urls[0], prefix, replicas: 3, leaseMs: 1500 });
    await using b = await startRegistry({ servers: urls[1], prefix, replicas: 3, leaseMs: 1500 });
    expect([a.isLeader, b.isLeader]).toEqual([true, false]);
    const nc = await connect({ servers: urls[2] });
    try {
      const kvm = new Kvm(nc);
      for (const name of [presenceBucket(prefix), registryBucket(prefix)]) {
        const status = await (await kvm.open(name)).status();
        expect(status).toMatchObject({ replicas: 3, history: 1, storage: "file" });
      }
      await using agent = await startAgent({
        servers: urls[2],
        prefix,
        service: "echo",
        heartbeatMs: 200,
        methods: { say: (p) => p },
      });
      const kv = await kvm.open(presenceBucket(prefix));
      await expect
        .poll(() => kv.get(`echo.${agent.id}`).then((e) => e?.json()), { timeout: 5000 })
        .toEqual(agent.record);
      await expect.poll(() => b.instances().map((r) => r.id)).toEqual([agent.id]);
    } finally {
      await nc.close();
    }
  });
});
