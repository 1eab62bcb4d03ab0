import { startAgent } from "@natsmesh/agent";
import { cleanup, setup, type TestSetup, uniquePrefix } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatherStats } from "../src/gather-stats.js";

let t: TestSetup;
beforeAll(async () => {
  t = await setup({ tag: "gather" });
});
afterAll(() => cleanup(t));

const stats = (name: string, id: string, requests = 1) =>
  JSON.stringify({
    type: "io.nats.micro.v1.stats_response",
    name,
    id,
    endpoints: [{ name: "m", num_requests: requests, num_errors: 0 }],
  });

describe("gatherStats", () => {
  it("gathers every instance of a service and ends as soon as all have answered", async () => {
    const service = uniquePrefix("svc");
    const agents = await Promise.all(
      [1, 2, 3].map(() =>
        startAgent({ connection: t.nc, prefix: t.prefix, service, methods: { m: () => 1 } }),
      ),
    );
    try {
      const started = performance.now();
      const round = await gatherStats({
        connection: t.nc,
        service,
        expected: new Set(agents.map((a) => a.id)),
        maxWaitMs: 5000,
        token: undefined,
      });
      expect(performance.now() - started).toBeLessThan(4000);
      expect([...round.samples.keys()].sort()).toEqual(agents.map((a) => a.id).sort());
      expect(round.samples.get(agents[0]!.id)?.endpoints[0]).toMatchObject({
        name: "m",
        requests: 0,
      });
      expect(round).toMatchObject({ refused: undefined, dropped: 0 });
    } finally {
      await cleanup(...agents);
    }
  });

  it("ends at once when nobody listens (no responders)", async () => {
    const started = performance.now();
    const round = await gatherStats({
      connection: t.nc,
      service: uniquePrefix("nobody"),
      expected: new Set(["x"]),
      maxWaitMs: 10_000,
      token: undefined,
    });
    expect(performance.now() - started).toBeLessThan(5000);
    expect(round.samples.size).toBe(0);
  });

  it("counts only expected instances, once each, and reads a bounded number of replies", async () => {
    const service = uniquePrefix("svc");
    // An impostor answers every request with a flood: garbage, a large body, other services,
    // unknown ids, the real id twice (a spoof first), then far more than anyone needs.
    let sent = 0;
    const sub = t.nc.subscribe(`$SRV.STATS.${service}`, {
      callback: (_err, msg) => {
        const reply = msg.reply!;
        const out = [
          "not json",
          "x".repeat(1000 * 1000),
          stats("other", "real"),
          stats(service, "unknown"),
          stats(service, "real", 42),
          stats(service, "real", 7),
          ...Array.from({ length: 500 }, (_, i) => stats(service, `flood${i}`)),
        ];
        for (const body of out) {
          t.nc.publish(reply, body);
          sent++;
        }
      },
    });
    try {
      await t.nc.flush();
      const round = await gatherStats({
        connection: t.nc,
        service,
        expected: new Set(["real", "late"]),
        maxWaitMs: 1500,
        token: undefined,
      });
      expect(sent).toBeGreaterThan(500);
      expect([...round.samples.keys()]).toEqual(["real"]);
      expect(round.samples.get("real")?.endpoints[0]?.requests).toBe(42);
      // 2 × 2 expected + 16 spare replies read at most; the first one counted, the rest dropped.
      expect(round.dropped).toBe(2 * 2 + 16 - 1);
    } finally {
      sub.unsubscribe();
    }
  });
});
