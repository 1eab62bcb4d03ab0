import { headers } from "@nats-io/nats-core";
import { type Agent, type RequestContext, startAgent } from "@natsmesh/agent";
import { Header } from "@natsmesh/protocol";
import { type Registry, startRegistry } from "@natsmesh/registry";
import { type Balance, connectMesh, type Mesh } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup, until } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// A saturated instance that kept saying "ready" would keep being chosen by every presence
// strategy: its record says "saturated" until it drains, and strategies skip it.

const STRATEGIES: Balance[] = ["weighted", "random", "round-robin", "least-loaded"];
let t: TestSetup;
let registry: Registry;
let mesh: Mesh;
let busy: Agent;
let idle: Agent;
let release: () => void = () => undefined;

async function agent(): Promise<Agent> {
  return startAgent({
    servers: t.server.url,
    prefix: t.prefix,
    service: "svc",
    concurrency: 2,
    heartbeatMs: 100,
    methods: {
      who: (_p: unknown, ctx: RequestContext) => ctx.instance.id,
      hold: () =>
        new Promise<string>((resolve) => {
          const previous = release;
          release = () => {
            previous();
            resolve("released");
          };
        }),
    },
  });
}

beforeAll(async () => {
  t = await setup();
  registry = await startRegistry({
    servers: t.server.url,
    prefix: t.prefix,
    heartbeatTimeoutMs: 1000,
  });
  busy = await agent();
  idle = await agent();
  mesh = await connectMesh({ servers: t.server.url, prefix: t.prefix, retries: 0 });
  await until("two ready instances", () => {
    return mesh.instances("svc").filter((r) => r.status === "ready").length === 2;
  });
});

afterAll(() => cleanup(t, registry, busy, idle, mesh));

/** Requests the busy instance's `who` endpoint has seen, by its NATS micro stats. */
async function busyAttempts(): Promise<number> {
  const msg = await t.nc.request(`$SRV.STATS.svc.${busy.id}`, "", { timeout: 5000 });
  const stats = msg.json<{ endpoints: { name: string; num_requests: number }[] }>();
  return stats.endpoints.find((e) => e.name === "who")?.num_requests ?? 0;
}

function statusOf(id: string): string | undefined {
  return mesh.instances("svc").find((r) => r.id === id)?.status;
}

describe("a saturated instance in presence", () => {
  it("is skipped by every presence strategy while saturated, and chosen again once drained", async () => {
    const direct = (method: string) => {
      const h = headers();
      h.set(Header.Deadline, String(Date.now() + 60_000));
      return t.nc.request(`${t.prefix}.inst.svc.${busy.id}.${method}`, "null", {
        timeout: 60_000,
        headers: h,
      });
    };
    const held = [direct("hold"), direct("hold")];
    await until("two calls held", () => busy.stats().inflight === 2);
    const over = await direct("who");
    expect(over.headers?.get(Header.MeshError)).toBe("OVERLOADED");
    await until("the busy instance saturated", () => statusOf(busy.id) === "saturated");

    const before = await busyAttempts();
    for (const balance of STRATEGIES) {
      for (let i = 0; i < 20; i++) {
        expect(await mesh.request("svc", "who", null, { balance })).toBe(idle.id);
      }
    }
    expect(await busyAttempts()).toBe(before);

    release();
    await Promise.all(held);
    await until("the busy instance ready again", () => statusOf(busy.id) === "ready");
    // Each strategy asks from a client with no latency history of its own, so that what
    // decides is whether the drained instance is a candidate again: least-loaded keeps
    // preferring an instance its client measured faster, by design, and calls give it history.
    for (const balance of STRATEGIES) {
      const fresh = await connectMesh({ servers: t.server.url, prefix: t.prefix, retries: 0 });
      try {
        await until("the busy instance in a fresh cache", () =>
          fresh.instances("svc").some((r) => r.id === busy.id),
        );
        const seen = new Set<string>();
        for (let i = 0; i < 20 && !seen.has(busy.id); i++) {
          seen.add(await fresh.request<string>("svc", "who", null, { balance }));
        }
        expect([balance, seen.has(busy.id)]).toEqual([balance, true]);
      } finally {
        await fresh.close();
      }
    }
  });
});
