import { setTimeout as sleep } from "node:timers/promises";
import { Svcm } from "@nats-io/services";
import { type Agent, MeshError, startAgent } from "@natsmesh/agent";
import {
  type EndpointStatsData,
  OTHER_ERRORS,
  parseStatsData,
  StatsLimits,
} from "@natsmesh/protocol";
import { cleanup, setup, type TestSetup } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestSetup;
let agent: Agent;

beforeAll(async () => {
  t = await setup({ tag: "disc" });
  agent = await startAgent({
    servers: t.server.url,
    prefix: t.prefix,
    service: "calc",
    version: "1.4.0",
    description: "adds numbers",
    metadata: { team: "math" },
    methods: {
      add: async ([a, b]: [number, number]) => {
        await sleep(5);
        return a + b;
      },
      fail: () => {
        throw new Error("boom");
      },
      coded: (code: string) => {
        throw new MeshError(code, "as asked");
      },
    },
  });
});
afterAll(() => cleanup(t, agent));

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

describe("NATS micro discovery", () => {
  it("is seen by the @nats-io/services client", async () => {
    const client = new Svcm(t.nc).client({ maxWait: 1000, strategy: "timer" });
    const pings = await collect(await client.ping("calc"));
    expect(pings).toHaveLength(1);
    expect(pings[0]).toMatchObject({
      name: "calc",
      id: agent.id,
      version: "1.4.0",
      metadata: { team: "math" },
    });

    const infos = await collect(await client.info("calc", agent.id));
    expect(infos[0]).toMatchObject({
      type: "io.nats.micro.v1.info_response",
      description: "adds numbers",
      endpoints: [
        { name: "add", subject: `${t.prefix}.svc.calc.add`, queue_group: "q" },
        { name: "fail", subject: `${t.prefix}.svc.calc.fail`, queue_group: "q" },
        { name: "coded", subject: `${t.prefix}.svc.calc.coded`, queue_group: "q" },
      ],
    });
  });

  it("counts requests, errors and processing time in nanoseconds", async () => {
    for (let i = 0; i < 3; i++) {
      const msg = await t.nc.request(`${t.prefix}.svc.calc.add`, JSON.stringify([i, 1]), {
        timeout: 5000,
      });
      expect(msg.json()).toBe(i + 1);
    }
    await t.nc.request(`${t.prefix}.svc.calc.fail`, "", { timeout: 5000 });
    const stats = await collect(
      await new Svcm(t.nc).client({ maxWait: 1000, strategy: "timer" }).stats("calc"),
    );
    const add = stats[0]?.endpoints?.find((e) => e.name === "add");
    const fail = stats[0]?.endpoints?.find((e) => e.name === "fail");
    expect(add?.num_requests).toBe(3);
    expect(add?.num_errors).toBe(0);
    // Each call awaited 5 ms inside the handler: the time spans the async work.
    expect(add?.processing_time).toBeGreaterThanOrEqual(3 * 4_000_000);
    expect(add?.average_processing_time).toBeGreaterThanOrEqual(4_000_000);
    expect(fail?.num_errors).toBe(1);
    expect(fail?.last_error).toContain("INTERNAL");
    expect(stats[0]?.started).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it("reports handling times as a latency histogram and failures by code in data", async () => {
    const stats = await collect(
      await new Svcm(t.nc).client({ maxWait: 1000, strategy: "timer" }).stats("calc"),
    );
    const add = stats[0]?.endpoints?.find((e) => e.name === "add");
    const data = add?.data as EndpointStatsData;
    // Three calls that each awaited 5 ms: three counts in buckets from 4096 µs up.
    expect(data.latency_us.reduce((n, [, c]) => n + c, 0)).toBe(add?.num_requests);
    for (const [lower] of data.latency_us) expect(lower).toBeGreaterThanOrEqual(4096);
    expect(parseStatsData(data)).toBeDefined();
    const fail = stats[0]?.endpoints?.find((e) => e.name === "fail");
    expect(fail?.data).toMatchObject({ errors: { INTERNAL: 1 } });
  });

  it("counts at most StatsLimits.maxErrorCodes codes by name, the rest as OTHER", async () => {
    const extra = 5;
    for (let i = 0; i < StatsLimits.maxErrorCodes + extra; i++) {
      await t.nc.request(`${t.prefix}.svc.calc.coded`, JSON.stringify(`CODE_${i}`), {
        timeout: 5000,
      });
    }
    // Not a code the wire can carry: the caller got INTERNAL, and so it is counted.
    await t.nc.request(`${t.prefix}.svc.calc.coded`, JSON.stringify("no spaces allowed"), {
      timeout: 5000,
    });
    const doc = (await t.nc.request(`$SRV.STATS.calc.${agent.id}`, "", { timeout: 2000 })).json<{
      endpoints: { name: string; num_errors: number; data: EndpointStatsData }[];
    }>();
    const coded = doc.endpoints.find((e) => e.name === "coded")!;
    const errors = coded.data.errors;
    expect(Object.keys(errors)).toHaveLength(StatsLimits.maxErrorCodes + 1);
    expect(errors.CODE_0).toBe(1);
    expect(errors[OTHER_ERRORS]).toBe(extra + 1);
    expect(Object.values(errors).reduce((a, b) => a + b, 0)).toBe(coded.num_errors);
    expect(parseStatsData(coded.data)?.errors.size).toBe(StatsLimits.maxErrorCodes + 1);
  });

  it.each(["$SRV.PING", "$SRV.PING.calc", "$SRV.INFO.calc", "$SRV.STATS.calc"])(
    "answers a raw request on %s",
    async (subject) => {
      const msg = await t.nc.request(subject, "", { timeout: 2000 });
      const doc = msg.json<{ type: string; name: string; id: string }>();
      expect(doc.type).toMatch(/^io\.nats\.micro\.v1\.(ping|info|stats)_response$/);
      expect(doc.name).toBe("calc");
      expect(doc.id).toBe(agent.id);
    },
  );

  it("answers on its own id subject and not on another id", async () => {
    const mine = await t.nc.request(`$SRV.PING.calc.${agent.id}`, "", { timeout: 2000 });
    expect(mine.json<{ id: string }>().id).toBe(agent.id);
    await expect(t.nc.request("$SRV.PING.calc.OTHER", "", { timeout: 500 })).rejects.toThrow();
  });
});
