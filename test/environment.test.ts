import { Kvm } from "@nats-io/kv";
import { startAgent } from "@natsmesh/agent";
import { presenceBucket, presenceKey } from "@natsmesh/protocol";
import { startRegistry } from "@natsmesh/registry";
import { connectMesh } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup, uniquePrefix, waitUntil } from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

// Every natsmesh process reads NATS_URL and MESH_PREFIX (12-factor): the library entry points
// too, so a service started with only its environment joins the mesh that environment names.
// Each test file runs in its own process, so changing process.env here touches no other file.

const VARIABLES = ["NATS_URL", "MESH_PREFIX", "MESH_HEARTBEAT_MS"] as const;
const saved = Object.fromEntries(VARIABLES.map((name) => [name, process.env[name]]));

let t: TestSetup;
beforeAll(async () => {
  t = await setup({ tag: "env" });
});
afterEach(() => {
  for (const name of VARIABLES) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
});
afterAll(() => cleanup(t));

const echo = { say: (payload: unknown) => payload };

describe("NATS_URL and MESH_PREFIX", () => {
  it("startAgent, startRegistry and connectMesh use them when servers and prefix are not given", async () => {
    const prefix = uniquePrefix("envmesh");
    process.env.NATS_URL = `nats://127.0.0.1:1,${t.server.url}`;
    process.env.MESH_PREFIX = prefix;
    const agent = await startAgent({ service: "echo", methods: echo, heartbeatMs: 200 });
    const registry = await startRegistry({ heartbeatTimeoutMs: 600 });
    const mesh = await connectMesh({ timeoutMs: 10_000 });
    try {
      expect(agent.record.subject).toBe(`${prefix}.inst.echo.${agent.id}`);
      // The registry wrote the agent into the bucket of that prefix, on that server.
      const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
      expect(
        await waitUntil(
          async () => (await kv.get(presenceKey("echo", agent.id)))?.operation === "PUT",
          {
            timeoutMs: 10_000,
          },
        ),
      ).toBe(true);
      expect(await mesh.request("echo", "say", "over env")).toBe("over env");
      expect(
        await waitUntil(() => mesh.instances("echo").length === 1, { timeoutMs: 10_000 }),
      ).toBe(true);
      expect(await mesh.request("echo", "say", 7, { balance: "random" })).toBe(7);
    } finally {
      await cleanup(agent, registry, mesh);
    }
  });

  it("options given win over them, and options given as undefined fall back to them", async () => {
    const prefix = uniquePrefix("envwin");
    process.env.NATS_URL = "nats://127.0.0.1:1";
    process.env.MESH_PREFIX = uniquePrefix("envlose");
    const given = await startAgent({
      servers: t.server.url,
      prefix,
      service: "echo",
      methods: echo,
    });
    const mesh = await connectMesh({ servers: t.server.url, prefix, timeoutMs: 10_000 });
    try {
      expect(given.record.subject).toBe(`${prefix}.inst.echo.${given.id}`);
      expect(await mesh.request("echo", "say", 1)).toBe(1);
    } finally {
      await cleanup(given, mesh);
    }

    process.env.NATS_URL = t.server.url;
    process.env.MESH_PREFIX = prefix;
    const fallback = await startAgent({
      servers: undefined,
      prefix: undefined,
      service: "echo",
      methods: echo,
    });
    const registry = await startRegistry({ servers: undefined, prefix: undefined });
    const client = await connectMesh({ servers: undefined, prefix: undefined, timeoutMs: 10_000 });
    try {
      expect(fallback.record.subject).toBe(`${prefix}.inst.echo.${fallback.id}`);
      expect(await client.request("echo", "say", 2)).toBe(2);
      expect(
        await waitUntil(() => client.instances("echo").some((r) => r.id === fallback.id), {
          timeoutMs: 10_000,
        }),
      ).toBe(true);
    } finally {
      await cleanup(fallback, registry, client);
    }
  });

  it("blank values are unset; an invalid MESH_PREFIX is a TypeError naming it, before connecting", async () => {
    process.env.NATS_URL = " ";
    process.env.MESH_PREFIX = "";
    const mesh = await connectMesh({ servers: t.server.url, presence: false });
    await mesh.close();

    process.env.MESH_PREFIX = "bad prefix";
    const calls = [
      () => startAgent({ service: "echo", methods: echo }),
      () => startRegistry({}),
      () => connectMesh({}),
    ];
    for (const start of calls) {
      await expect(start()).rejects.toThrow(TypeError);
      await expect(start()).rejects.toThrow(/MESH_PREFIX/);
    }
    // A prefix given in code is checked, not the variable.
    const agent = await startAgent({
      servers: t.server.url,
      prefix: uniquePrefix("envok"),
      service: "echo",
      methods: echo,
    });
    await agent.stop();
  });
});

describe("MESH_HEARTBEAT_MS", () => {
  it("sets an agent's heartbeat and a registry's timeout (three of them) when not given in code", async () => {
    const prefix = uniquePrefix("envhb");
    process.env.MESH_HEARTBEAT_MS = "150";
    const registry = await startRegistry({ servers: t.server.url, prefix });
    const agent = await startAgent({
      servers: t.server.url,
      prefix,
      service: "echo",
      methods: echo,
    });
    const beats: number[] = [];
    const sub = t.nc.subscribe(`${prefix}.presence.echo.${agent.id}`, {
      callback: () => {
        beats.push(performance.now());
      },
    });
    try {
      // The default heartbeat is 1000 ms: six beats at a median gap under 500 ms are the variable's.
      expect(await waitUntil(() => beats.length >= 6, { timeoutMs: 10_000 })).toBe(true);
      const gaps = beats
        .slice(1)
        .map((at, i) => at - beats[i]!)
        .sort((a, b) => a - b);
      expect(gaps[Math.floor(gaps.length / 2)]).toBeLessThan(500);

      // An agent that vanishes without a word is evicted after 3 × 150 ms, not the default 3 s.
      const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
      const key = presenceKey("echo", agent.id);
      expect(
        await waitUntil(async () => (await kv.get(key))?.operation === "PUT", {
          timeoutMs: 10_000,
        }),
      ).toBe(true);
      const vanished = performance.now();
      await agent.connection.close();
      expect(
        await waitUntil(async () => (await kv.get(key))?.operation !== "PUT", {
          timeoutMs: 10_000,
        }),
      ).toBe(true);
      expect(performance.now() - vanished).toBeLessThan(2500);
    } finally {
      sub.unsubscribe();
      await cleanup(agent, registry);
    }
  });

  it("is a TypeError naming it when it is not whole milliseconds; code wins over it", async () => {
    process.env.MESH_HEARTBEAT_MS = "1s";
    await expect(
      startAgent({ servers: t.server.url, service: "echo", methods: echo }),
    ).rejects.toThrow(/MESH_HEARTBEAT_MS/);
    await expect(startRegistry({ servers: t.server.url })).rejects.toThrow(/MESH_HEARTBEAT_MS/);
    const agent = await startAgent({
      servers: t.server.url,
      prefix: uniquePrefix("envhbok"),
      service: "echo",
      methods: echo,
      heartbeatMs: 1000,
    });
    await agent.stop();
    const registry = await startRegistry({
      servers: t.server.url,
      prefix: uniquePrefix("envhbok"),
      heartbeatTimeoutMs: 3000,
    });
    await registry.stop();
  });
});
