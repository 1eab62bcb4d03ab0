import { Kvm } from "@nats-io/kv";
import { type InstanceRecord, presenceBucket, presenceKey } from "@natsmesh/protocol";
import { connectMesh } from "@natsmesh/sdk";
import {
  type Fixture,
  killAllProcesses,
  startFixture,
  startNatsServer,
  uniquePrefix,
} from "@natsmesh/testing";
import { afterAll, describe, expect, it } from "vitest";

/** An agent in a child process, configured by environment; prints its record once serving. */
const AGENT = new URL("./fixtures/agent.mjs", import.meta.url);

afterAll(() => killAllProcesses());

describe("failover under load", () => {
  it("loses no idempotent call when one of three agent processes is killed", async () => {
    await using server = await startNatsServer();
    const prefix = uniquePrefix("fo");
    await using mesh = await connectMesh({ servers: server.url, prefix, retries: 3 });
    const kv = await new Kvm(mesh.connection).create(presenceBucket(prefix), { history: 1 });
    const env = { NATS_URL: server.url, MESH_PREFIX: prefix, AGENT_DELAY_MS: "2" };
    const agents: Fixture<InstanceRecord>[] = [];
    try {
      for (let i = 0; i < 3; i++)
        agents.push(await startFixture<InstanceRecord>(AGENT, [], { env }));
      // No registry here: the test publishes the records, so only the SDK's failover is at work.
      for (const a of agents) await kv.put(presenceKey("svc", a.info.id), JSON.stringify(a.info));
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
      // Under way before the kill; a loaded machine may take longer than the default second.
      await expect.poll(() => completed, { timeout: 20_000 }).toBeGreaterThan(300);
      await victim.kill();
      await load;

      expect(failures).toEqual([]);
      expect(completed).toBe(1200);
      expect(served.get(victim.info.id)).toBeGreaterThan(0);
    } finally {
      for (const a of agents) await a.kill();
    }
  }, 60_000);
});
