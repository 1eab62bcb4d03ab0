import { startAgent } from "@natsmesh/agent";
import { isMeshError } from "@natsmesh/protocol";
import { connectMesh } from "@natsmesh/sdk";
import { startNatsServer } from "@natsmesh/testing";
import { describe, expect, it } from "vitest";

describe("nats-server restart under traffic", () => {
  it("recovers after the reconnect, and no call outlives its deadline", async () => {
    await using server = await startNatsServer();
    const prefix = `rc${process.pid}`;
    await using agent = await startAgent({
      servers: server.url,
      prefix,
      service: "echo",
      methods: { say: (p) => p },
    });
    await using mesh = await connectMesh({ servers: server.url, prefix });
    const timeout = 1500;
    const outcomes: { ok: boolean; code?: string; elapsed: number; at: number }[] = [];
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
          if (!isMeshError(err)) throw err;
          outcomes.push({ ok: false, code: err.code, elapsed: Date.now() - start, at: start });
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    }

    const workers = Array.from({ length: 4 }, worker);
    await expect.poll(() => outcomes.filter((o) => o.ok).length).toBeGreaterThan(50);
    await server.restart();
    restarted = Date.now();
    await expect
      .poll(() => outcomes.filter((o) => o.ok && o.at > restarted).length, { timeout: 15_000 })
      .toBeGreaterThan(50);
    stop = true;
    await Promise.all(workers);

    for (const o of outcomes) {
      // The shared deadline timer ticks every 10 ms; allow for it and a loaded machine.
      expect(o.elapsed).toBeLessThanOrEqual(timeout + 250);
      if (!o.ok) expect(["UNAVAILABLE", "DEADLINE_EXCEEDED"]).toContain(o.code);
    }
    expect(agent.id).toBeDefined();
  }, 40_000);
});
