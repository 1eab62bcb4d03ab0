import { setTimeout as sleep } from "node:timers/promises";
import { startAgent } from "@natsmesh/agent";
import { isMeshError } from "@natsmesh/protocol";
import { connectMesh } from "@natsmesh/sdk";
import { startNatsServer, uniquePrefix } from "@natsmesh/testing";
import { describe, expect, it } from "vitest";

describe("nats-server restart under traffic", () => {
  it("recovers after the reconnect, and no call outlives its deadline", async () => {
    await using server = await startNatsServer();
    const prefix = uniquePrefix("rc");
    await using agent = await startAgent({
      servers: server.url,
      prefix,
      service: "echo",
      methods: { say: (p) => p },
    });
    await using mesh = await connectMesh({ servers: server.url, prefix });
    const timeout = 1500;
    const outcomes: { ok: boolean; code?: string; elapsed: number; at: number }[] = [];
    // What no caller should see (not a MeshError); the workers stop on the first, and every
    // wait below gives up on it, so the test fails with it at once.
    const unexpected: unknown[] = [];
    let restarted = 0;
    let stop = false;

    async function worker(): Promise<void> {
      // Bounded: at most 3000 calls per worker, and the loop ends when the test says so.
      for (let i = 0; i < 3000 && !stop; i++) {
        const start = Date.now();
        try {
          await mesh.request("echo", "say", i, { timeout });
          outcomes.push({ ok: true, elapsed: Date.now() - start, at: start });
        } catch (err) {
          if (!isMeshError(err)) {
            unexpected.push(err);
            stop = true;
            return;
          }
          outcomes.push({ ok: false, code: err.code, elapsed: Date.now() - start, at: start });
          await sleep(10); // not a busy loop while the server is down
        }
      }
    }
    const okAfter = (time: number) => outcomes.filter((o) => o.ok && o.at > time).length;

    const workers = Array.from({ length: 4 }, worker);
    await expect.poll(() => unexpected.length > 0 || okAfter(0) > 50).toBe(true);
    expect(unexpected).toEqual([]);
    await server.restart();
    restarted = Date.now();
    await expect
      .poll(() => unexpected.length > 0 || okAfter(restarted) > 50, { timeout: 15_000 })
      .toBe(true);
    stop = true;
    await Promise.all(workers);
    expect(unexpected).toEqual([]);

    for (const o of outcomes) {
      // The shared deadline timer ticks every 10 ms; allow for it and a loaded machine.
      expect(o.elapsed).toBeLessThanOrEqual(timeout + 250);
      if (!o.ok) expect(["UNAVAILABLE", "DEADLINE_EXCEEDED"]).toContain(o.code);
    }
    expect(agent.id).toBeDefined();
  }, 40_000);
});
