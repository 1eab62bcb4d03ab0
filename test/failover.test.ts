import { Kvm } from "@nats-io/kv";
import { presenceBucket, presenceKey } from "@natsmesh/protocol";
import { connectMesh } from "@natsmesh/sdk";
import { startNatsServer } from "@natsmesh/testing";
import { describe, expect, it } from "vitest";
import { type AgentProcess, spawnAgent } from "./support.js";

describe("failover under load", () => {
  it("loses no idempotent call when one of three agent processes is killed", async () => {
    await using server = await startNatsServer();
    const prefix = `fo${process.pid}`;
    await using mesh = await connectMesh({ servers: server.url, prefix, retries: 3 });
    const kv = await new Kvm(mesh.connection).create(presenceBucket(prefix), { history: 1 });
    const env = { NATS_URL: server.url, MESH_PREFIX: prefix, AGENT_DELAY_MS: "2" };
    const agents: AgentProcess[] = [];
    try {
      for (let i = 0; i < 3; i++) agents.push(await spawnAgent(env));
      // No registry here: the test publishes the records, so only the SDK's failover is at work.
      for (const a of agents)
        await kv.put(presenceKey("svc", a.record.id), JSON.stringify(a.record));
      await expect.poll(() => mesh.instances("svc").length).toBe(3);

      const served = new Map<string, number>();
      const failures: unknown[] = [];
      let completed = 0;
      const victim = agents[0]!;
      const worker = async () => {
        // Bounded: 150 calls per worker.
        for (let i = 0; i < 150; i++) {
          try {
            const id = await mesh.request<string>("svc", "who", i, {
              balance: "random",
              idempotent: true,
              timeout: 4000,
            });
            served.set(id, (served.get(id) ?? 0) + 1);
          } catch (err) {
            failures.push(err);
          }
          completed++;
        }
      };
      const load = Promise.all(Array.from({ length: 8 }, worker));
      await expect.poll(() => completed).toBeGreaterThan(300);
      await victim.kill();
      await load;

      expect(failures).toEqual([]);
      expect(completed).toBe(1200);
      expect(served.get(victim.record.id)).toBeGreaterThan(0);
    } finally {
      for (const a of agents) await a.kill();
    }
  }, 60_000);
});
