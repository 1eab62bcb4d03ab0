import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type NatsCluster, startNatsCluster } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, isAlive } from "./helpers.js";

describe("startNatsCluster", () => {
  let cluster: NatsCluster;
  let nc: NatsConnection | undefined;

  beforeAll(async () => {
    cluster = await startNatsCluster();
  });

  afterAll(async () => {
    await nc?.close();
    await cluster?.dispose();
  });

  it("forms a routed cluster of 3 on distinct ports", () => {
    expect(cluster.servers).toHaveLength(3);
    expect(new Set(cluster.urls).size).toBe(3);
    for (const s of cluster.servers) expect(s.running).toBe(true);
  });

  it("takes an R3 KV bucket and keeps working when the stream leader is killed", async () => {
    nc = await connect({ servers: cluster.urls, reconnectTimeWait: 100 });
    // Reads go to the stream leader: a direct get may be answered by a replica still catching up
    // (the restarted node below), and this test is about writes surviving, not stale reads.
    const kv = await new Kvm(nc).create("r3", { replicas: 3, allow_direct: false });
    await kv.put("k", "one");
    const info = (await kv.status()).streamInfo;
    expect(info.config.num_replicas).toBe(3);
    const leaderName = info.cluster?.leader;
    const index = cluster.servers.findIndex((_, i) => leaderName === `${cluster.name}-n${i}`);
    expect(index).toBeGreaterThanOrEqual(0);
    const victim = cluster.servers[index]!;
    const pid = victim.pid!;

    await victim.kill();
    expect(isAlive(pid)).toBe(false);

    // The two survivors elect a new stream leader (raft election timeouts are several
    // seconds); until then a put fails, so retry within a bound.
    await eventually(() => kv.put("k", "two"), 20_000);
    expect((await kv.get("k"))?.string()).toBe("two");

    const port = victim.port;
    await victim.restart();
    expect(victim.port).toBe(port);
    await cluster.waitReady();
    await eventually(() => kv.put("k", "three"), 20_000);
    expect((await kv.get("k"))?.string()).toBe("three");
  }, 60_000);

  it("stop() is idempotent and leaves no process behind", async () => {
    await nc?.close();
    nc = undefined;
    const pids = cluster.servers.map((s) => s.pid!);
    const stopping = cluster.stop();
    expect(cluster.stop()).toBe(stopping);
    await stopping;
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
  });
});
