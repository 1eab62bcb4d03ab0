import { type Agent, type AgentOptions, type RequestContext, startAgent } from "@natsmesh/agent";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup, uniquePrefix, waitUntil } from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

/** A service module, as `natsmesh agent <module>` loads it. */
type ServiceModule = Pick<AgentOptions, "service" | "version" | "methods" | "events">;

async function load(name: string): Promise<ServiceModule> {
  const url = new URL(`../examples/services/${name}.mjs`, import.meta.url);
  return ((await import(url.href)) as { default: ServiceModule }).default;
}

let t: TestSetup;
let modules: Record<"echo" | "greeter" | "slow", ServiceModule>;
beforeAll(async () => {
  t = await setup({ tag: "exsv" });
  modules = { echo: await load("echo"), greeter: await load("greeter"), slow: await load("slow") };
});
afterAll(() => cleanup(t));

let started: (Agent | Mesh)[] = [];
afterEach(async () => {
  await cleanup(...started);
  started = [];
});

/** A mesh (no presence: queue calls) and agents running `modules`, on a fresh prefix. */
async function run(...services: (ServiceModule & Partial<AgentOptions>)[]) {
  const prefix = uniquePrefix("exsv");
  const mesh = await connectMesh({ servers: t.server.url, prefix, presence: false });
  started.push(mesh);
  const agents: Agent[] = [];
  for (const m of services) {
    const agent = await startAgent({ servers: t.server.url, prefix, mesh, ...m });
    started.push(agent);
    agents.push(agent);
  }
  return { mesh, agents };
}

describe("examples/services/echo.mjs", () => {
  it("answers echo.say with its payload, whatever JSON value it is", async () => {
    const { mesh } = await run(modules.echo);
    for (const payload of [{ hi: [1, "two", null] }, "text", 42, null]) {
      expect(await mesh.request("echo", "say", payload)).toEqual(payload);
    }
    expect(await mesh.request("echo", "say", { a: 1 }, { codec: "json" })).toEqual({ a: 1 });
  });
});

describe("examples/services/greeter.mjs", () => {
  it("greets through echo.say, whose call inherits the caller's deadline and trace", async () => {
    const seen: Pick<RequestContext, "deadline" | "traceparent">[] = [];
    // An echo that records what the nested call brought, answering as the example echo does.
    const recordingEcho = {
      ...modules.echo,
      methods: {
        say: (payload: unknown, ctx: RequestContext) => {
          seen.push({ deadline: ctx.deadline, traceparent: ctx.traceparent });
          return payload;
        },
      },
    };
    const { mesh } = await run(modules.greeter, recordingEcho);
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const deadline = Date.now() + 4_000;
    const reply = await mesh.request(
      "greeter",
      "hello",
      { name: "Ada" },
      { deadline, headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } },
    );
    expect(reply).toEqual({ greeting: "Hello, Ada!" });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.deadline).toBe(deadline);
    expect(seen[0]!.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(seen[0]!.traceparent).not.toContain("00f067aa0ba902b7");
  });

  it("answers BAD_REQUEST, not INTERNAL, for a missing or non-string name", async () => {
    const { mesh } = await run(modules.greeter, modules.echo);
    for (const payload of [
      {},
      { name: 42 },
      { name: "" },
      null,
      "Ada",
      { name: "x".repeat(201) },
    ]) {
      await expect(
        mesh.request("greeter", "hello", payload),
        JSON.stringify(payload),
      ).rejects.toMatchObject({
        code: "BAD_REQUEST",
      });
    }
  });

  it("passes on UNAVAILABLE when no echo runs", async () => {
    const { mesh } = await run(modules.greeter);
    await expect(
      mesh.request("greeter", "hello", { name: "Ada" }, { timeout: 3_000 }),
    ).rejects.toMatchObject({ code: "UNAVAILABLE" });
  });
});

describe("examples/services/slow.mjs", () => {
  it("sleeps the time asked for and says how long", async () => {
    const { mesh, agents } = await run(modules.slow);
    const before = Date.now();
    const reply = await mesh.request<{ slept: number; instance: string }>("slow", "work", {
      ms: 150,
    });
    expect(Date.now() - before).toBeGreaterThanOrEqual(150);
    expect(reply.slept).toBeGreaterThanOrEqual(149);
    expect(reply.instance).toBe(agents[0]!.id);
    await expect(mesh.request("slow", "work", { ms: -1 })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    await expect(mesh.request("slow", "work", { ms: 60_001 })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
  });

  it("stops sleeping when ctx.signal aborts, so the deadline frees its slot at once", async () => {
    const { mesh, agents } = await run(modules.slow);
    const agent = agents[0]!;
    const before = Date.now();
    await expect(
      mesh.request("slow", "work", { ms: 30_000 }, { timeout: 300 }),
    ).rejects.toMatchObject({ code: "DEADLINE_EXCEEDED" });
    expect(Date.now() - before).toBeLessThan(5_000);
    expect(await waitUntil(() => agent.stats().inflight === 0, { timeoutMs: 5_000 })).toBe(true);
    // A handler that ignored the signal would have been taken off as a runaway.
    expect(agent.stats().runaway).toBe(0);
  });
});
