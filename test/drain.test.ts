import { setTimeout as sleep } from "node:timers/promises";
import { type Agent, type RequestContext, startAgent } from "@natsmesh/agent";
import { isMeshError } from "@natsmesh/protocol";
import { connectMesh } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup, uniquePrefix } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestSetup;

beforeAll(async () => {
  t = await setup();
});
afterAll(() => cleanup(t));

async function pair(prefix: string, drainTimeoutMs = 10_000) {
  const running = new Map<string, number>();
  const aborted: unknown[] = [];
  const make = (name: string) =>
    startAgent({
      servers: t.server.url,
      prefix,
      service: "work",
      drainTimeoutMs,
      methods: {
        run: async (ms: number, ctx: RequestContext) => {
          running.set(name, (running.get(name) ?? 0) + 1);
          // Works for `ms`, or until the agent aborts the call.
          await sleep(ms, undefined, { signal: ctx.signal }).catch(() => {});
          if (ctx.signal.aborted) aborted.push(ctx.signal.reason);
          running.set(name, running.get(name)! - 1);
          return name;
        },
      },
    });
  const agents: Record<string, Agent> = { a: await make("a"), b: await make("b") };
  return { agents, running, aborted };
}

describe("draining an agent", () => {
  it("finishes an in-flight call during stop() while the other instance keeps serving", async () => {
    const prefix = uniquePrefix("dr");
    await using mesh = await connectMesh({ servers: t.server.url, prefix });
    const { agents, running } = await pair(prefix);
    const slow = mesh.request<string>("work", "run", 400);
    await expect.poll(() => (running.get("a") ?? 0) + (running.get("b") ?? 0)).toBe(1);
    const busy = (running.get("a") ?? 0) === 1 ? "a" : "b";
    const other = busy === "a" ? "b" : "a";
    const stopping = agents[busy]!.stop();
    expect(agents[busy]!.stop()).toBe(stopping);

    // While it drains, every new call is served by the other instance.
    const during = await Promise.all(
      Array.from({ length: 20 }, () => mesh.request("work", "run", 1)),
    );
    expect(new Set(during)).toEqual(new Set([other]));
    expect(await slow).toBe(busy);
    await stopping;

    const after = await Promise.all(
      Array.from({ length: 10 }, () => mesh.request("work", "run", 1)),
    );
    expect(new Set(after)).toEqual(new Set([other]));
    // The stopped instance's own subject has no responders any more.
    const direct = await t.nc
      .request(`${prefix}.inst.work.${agents[busy]!.id}.run`, "1", { timeout: 2000 })
      .catch((e: unknown) => e);
    expect(direct).toBeInstanceOf(Error);
    await agents[other]!.stop();
  });

  it("aborts calls still running after the grace period and answers them UNAVAILABLE", async () => {
    const prefix = uniquePrefix("dr");
    await using mesh = await connectMesh({ servers: t.server.url, prefix, retries: 0 });
    const { agents, running, aborted } = await pair(prefix, 150);
    await agents.b!.stop();
    const call = mesh.request("work", "run", 10_000, { timeout: 20_000 }).catch((e: unknown) => e);
    await expect.poll(() => running.get("a")).toBe(1);
    const start = Date.now();
    await agents.a!.stop();
    const err = await call;
    expect(isMeshError(err, "UNAVAILABLE")).toBe(true);
    // The handler had started: the SDK must not retry it as if it never ran.
    expect((err as { data?: unknown }).data).toEqual({ started: true });
    expect(Date.now() - start).toBeLessThan(5000);
    await expect.poll(() => aborted.length).toBe(1);
  });
});
