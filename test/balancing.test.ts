import { setTimeout as sleep } from "node:timers/promises";
import { type KV, Kvm } from "@nats-io/kv";
import { type Agent, type RequestContext, startAgent } from "@natsmesh/agent";
import { type InstanceRecord, isMeshError, presenceBucket, presenceKey } from "@natsmesh/protocol";
import { connectMesh, type Mesh, type PresenceEvent } from "@natsmesh/sdk";
import { cleanup, type NatsServer, startNatsServer, uniquePrefix } from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

// These tests play the registry's part themselves, writing records into the presence bucket, so
// the SDK's view and strategies are tested on their own; registry.test.ts runs the whole chain.

let server: NatsServer;
/** What each test's worlds started, ended after the test. */
let started: { mesh: Mesh; agents: Agent[] }[] = [];

beforeAll(async () => {
  server = await startNatsServer();
});
afterEach(async () => {
  await cleanup(...started.flatMap((w) => [...w.agents, w.mesh]));
  started = [];
});
afterAll(() => cleanup(server));

interface World {
  prefix: string;
  kv: KV;
  mesh: Mesh;
  agents: Agent[];
}

async function world(meshOptions: Parameters<typeof connectMesh>[0] = {}): Promise<World> {
  const prefix = uniquePrefix("bal");
  const mesh = await connectMesh({ servers: server.url, prefix, ...meshOptions });
  const kv = await new Kvm(mesh.connection).create(presenceBucket(prefix), { history: 1 });
  const w: World = { prefix, kv, mesh, agents: [] };
  started.push(w);
  return w;
}

async function agent(
  w: World,
  record: Partial<Pick<InstanceRecord, "weight" | "status" | "zone" | "version" | "metadata">> = {},
  delayMs = 0,
): Promise<Agent> {
  const a = await startAgent({
    servers: server.url,
    prefix: w.prefix,
    service: "svc",
    version: record.version ?? "1.0.0",
    ...(record.zone === undefined ? {} : { zone: record.zone }),
    ...(record.metadata === undefined ? {} : { metadata: record.metadata }),
    methods: {
      who: async (_p: unknown, ctx: RequestContext) => {
        if (delayMs > 0) await sleep(delayMs);
        return ctx.instance.id;
      },
    },
  });
  w.agents.push(a);
  await put(w, { ...a.record, ...record });
  return a;
}

async function put(w: World, record: InstanceRecord): Promise<void> {
  await w.kv.put(presenceKey(record.service, record.id), JSON.stringify(record));
  await expect.poll(() => w.mesh.instances("svc").find((r) => r.id === record.id)).toEqual(record);
}

async function tally(w: World, n: number, options: Parameters<Mesh["request"]>[3], parallel = 1) {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i += parallel) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(parallel, n - i) }, () =>
        w.mesh.request<string>("svc", "who", null, options),
      ),
    );
    for (const id of batch) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

describe("presence view", () => {
  it("falls back to the queue subject at once on an empty bucket and on a missing one", async () => {
    const w = await world();
    const a = await startAgent({
      servers: server.url,
      prefix: w.prefix,
      service: "svc",
      methods: { who: () => "queued" },
    });
    w.agents.push(a);
    const start = Date.now();
    expect(await w.mesh.request("svc", "who", null, { balance: "random" })).toBe("queued");
    expect(Date.now() - start).toBeLessThan(2000);

    const prefix = uniquePrefix("nobucket");
    await using mesh = await connectMesh({ servers: server.url, prefix });
    await using b = await startAgent({
      servers: server.url,
      prefix,
      service: "svc",
      methods: { who: () => "queued" },
    });
    expect(b.id).toBeDefined();
    const t = Date.now();
    expect(await mesh.request("svc", "who", null, { balance: "round-robin" })).toBe("queued");
    expect(Date.now() - t).toBeLessThan(2000);
    expect(mesh.instances()).toEqual([]);
  });

  it("reports up, update and down (delete and purge) to watch() and instances()", async () => {
    const w = await world();
    const events: PresenceEvent[] = [];
    const controller = new AbortController();
    const done = (async () => {
      for await (const e of w.mesh.watch("svc", { signal: controller.signal })) events.push(e);
    })();
    const a = await agent(w);
    await put(w, { ...a.record, weight: 5 });
    await w.kv.delete(presenceKey("svc", a.id));
    await expect.poll(() => w.mesh.instances("svc")).toEqual([]);
    const b = await agent(w);
    await w.kv.purge(presenceKey("svc", b.id));
    await expect.poll(() => events.length).toBe(5);
    expect(events.map((e) => [e.type, e.instance.id])).toEqual([
      ["up", a.id],
      ["update", a.id],
      ["down", a.id],
      ["up", b.id],
      ["down", b.id],
    ]);
    expect(events[1]?.instance.weight).toBe(5);
    controller.abort();
    await done;
  });

  it("ignores invalid records in the bucket", async () => {
    const w = await world();
    await w.kv.put("svc.FAKE", "not json");
    await w.kv.put("svc.FAKE2", JSON.stringify({ v: 1, id: "OTHER" }));
    const a = await agent(w);
    expect(w.mesh.instances("svc").map((r) => r.id)).toEqual([a.id]);
  });

  it("keeps following the bucket across a server restart", async () => {
    await using local = await startNatsServer();
    const prefix = uniquePrefix("rs");
    await using mesh = await connectMesh({ servers: local.url, prefix });
    const kv = await new Kvm(mesh.connection).create(presenceBucket(prefix), { history: 1 });
    await using a = await startAgent({
      servers: local.url,
      prefix,
      service: "svc",
      methods: { who: () => 1 },
    });
    await kv.put(presenceKey("svc", a.id), JSON.stringify(a.record));
    await expect.poll(() => mesh.instances("svc").length).toBe(1);
    const events: string[] = [];
    const controller = new AbortController();
    const watching = (async () => {
      for await (const e of mesh.watch("svc", { signal: controller.signal }))
        events.push(`${e.type}:${e.instance.weight}`);
    })();
    await expect.poll(() => events).toEqual(["up:100"]);
    await local.restart();
    // JetStream needs a moment after a restart; the put is retried, bounded by the poll.
    await expect
      .poll(
        () =>
          kv.put(presenceKey("svc", a.id), JSON.stringify({ ...a.record, weight: 9 })).then(
            () => true,
            () => false,
          ),
        {
          timeout: 15_000,
          interval: 250,
        },
      )
      .toBe(true);
    await expect.poll(() => mesh.instances("svc")[0]?.weight, { timeout: 15_000 }).toBe(9);
    // The re-created watch replays the unchanged record: that is no news, only the change is.
    expect(events).toEqual(["up:100", "update:9"]);
    controller.abort();
    await watching;
    await kv.delete(presenceKey("svc", a.id));
    await expect.poll(() => mesh.instances("svc").length).toBe(0);
  });
});

describe("balancing strategies", () => {
  it("weighted splits 1:1:2 within ±3 points over 4000 calls", async () => {
    const w = await world();
    const [a, b, c] = [
      await agent(w, { weight: 100 }),
      await agent(w, { weight: 100 }),
      await agent(w, { weight: 200 }),
    ];
    const counts = await tally(w, 4000, { balance: "weighted" }, 64);
    const share = (x: Agent) => ((counts.get(x.id) ?? 0) / 4000) * 100;
    expect(Math.abs(share(a) - 25)).toBeLessThanOrEqual(3);
    expect(Math.abs(share(b) - 25)).toBeLessThanOrEqual(3);
    expect(Math.abs(share(c) - 50)).toBeLessThanOrEqual(3);
  }, 60_000);

  it("round-robin goes in exact turns", async () => {
    const w = await world();
    const ids = [(await agent(w)).id, (await agent(w)).id, (await agent(w)).id].sort();
    const order: string[] = [];
    for (let i = 0; i < 12; i++)
      order.push(await w.mesh.request<string>("svc", "who", null, { balance: "round-robin" }));
    const first = ids.indexOf(order[0]!);
    expect(order).toEqual(order.map((_, i) => ids[(first + i) % 3]));
  });

  it("least-loaded sends a 10x slower instance under 15% of calls", async () => {
    const w = await world();
    const slow = await agent(w, {}, 20);
    await agent(w, {}, 2);
    await agent(w, {}, 2);
    const counts = await tally(w, 900, { balance: "least-loaded" }, 12);
    expect((counts.get(slow.id) ?? 0) / 900).toBeLessThan(0.15);
  }, 60_000);

  it("filters by version (exact and semver range); a version nobody runs is UNAVAILABLE, never another version", async () => {
    const w = await world();
    const v1 = await agent(w, { version: "1.4.0" });
    const v2 = await agent(w, { version: "2.1.0" });
    expect(new Set((await tally(w, 20, { balance: "random", version: "^2" })).keys())).toEqual(
      new Set([v2.id]),
    );
    expect(new Set((await tally(w, 20, { balance: "random", version: "1.4.0" })).keys())).toEqual(
      new Set([v1.id]),
    );
    // The queue group cannot filter: a filtered call picks from presence, whatever the strategy.
    for (const balance of [
      undefined,
      "queue",
      "random",
      "weighted",
      "round-robin",
      "least-loaded",
    ] as const) {
      expect(new Set((await tally(w, 10, { balance, version: "^1" })).keys())).toEqual(
        new Set([v1.id]),
      );
      await expect(
        w.mesh.request("svc", "who", null, { ...(balance ? { balance } : {}), version: "^9" }),
      ).rejects.toMatchObject({ code: "UNAVAILABLE", data: { version: "^9" } });
    }
    await expect(
      w.mesh.request("svc", "who", null, { balance: "random", version: "not a range" }),
    ).rejects.toThrow(TypeError);
  });

  it("a version or metadata filter never reaches the queue group, even when presence knows no instance", async () => {
    const w = await world();
    let served = 0;
    const a = await startAgent({
      servers: server.url,
      prefix: w.prefix,
      service: "svc",
      version: "1.0.0",
      metadata: { tier: "silver" },
      methods: {
        who: (_p: unknown, ctx: RequestContext) => {
          served++;
          return ctx.instance.id;
        },
      },
    });
    w.agents.push(a);
    // Not in the bucket: only the queue group could reach it.
    expect(await w.mesh.request("svc", "who", null)).toBe(a.id);
    expect(served).toBe(1);
    for (const filter of [{ version: "^1" }, { version: "^9" }, { metadata: { tier: "silver" } }]) {
      await expect(w.mesh.request("svc", "who", null, filter)).rejects.toMatchObject({
        code: "UNAVAILABLE",
      });
    }
    await put(w, a.record);
    expect(await w.mesh.request("svc", "who", null, { version: "^1" })).toBe(a.id);
    await expect(
      w.mesh.request("svc", "who", null, { metadata: { tier: "gold" } }),
    ).rejects.toMatchObject({ code: "UNAVAILABLE" });
    await expect(
      w.mesh.request("svc", "who", null, { balance: "queue", version: "^9" }),
    ).rejects.toMatchObject({ code: "UNAVAILABLE" });
    expect(served).toBe(2);
    await using off = await connectMesh({ servers: server.url, prefix: w.prefix, presence: false });
    await expect(off.request("svc", "who", null, { version: "^1" })).rejects.toThrow(TypeError);
    await expect(
      w.mesh.request("svc", "who", null, { metadata: { tier: 1 } as never }),
    ).rejects.toThrow(TypeError);
  });

  it("gives no new calls to weight 0 or draining instances", async () => {
    const w = await world();
    const live = await agent(w);
    await agent(w, { weight: 0 });
    await agent(w, { status: "draining" });
    for (const balance of ["random", "weighted", "round-robin", "least-loaded"] as const) {
      expect(new Set((await tally(w, 30, { balance })).keys())).toEqual(new Set([live.id]));
    }
  });

  it("prefers the zone, spills over when it has none, and matches metadata exactly", async () => {
    const w = await world();
    const east = await agent(w, { zone: "east", metadata: { tier: "gold" } });
    const west = await agent(w, { zone: "west", metadata: { tier: "silver" } });
    expect(new Set((await tally(w, 20, { balance: "random", zone: "west" })).keys())).toEqual(
      new Set([west.id]),
    );
    expect(new Set((await tally(w, 20, { balance: "random", zone: "north" })).keys())).toEqual(
      new Set([east.id, west.id]),
    );
    expect(
      new Set((await tally(w, 20, { balance: "random", metadata: { tier: "gold" } })).keys()),
    ).toEqual(new Set([east.id]));
    // With the queue strategy too: the zone is preferred through presence.
    expect(new Set((await tally(w, 20, { balance: "queue", zone: "west" })).keys())).toEqual(
      new Set([west.id]),
    );
  });
});

describe("failover", () => {
  it("moves a call whose instance has no responders to another instance, even when not idempotent", async () => {
    const w = await world({ retries: 0 });
    const live = await agent(w);
    const ghost = { ...live.record, id: "GHOST0000000000000000000" };
    ghost.subject = `${w.prefix}.inst.svc.${ghost.id}`;
    await put(w, ghost);
    const downs: string[] = [];
    const controller = new AbortController();
    const watching = (async () => {
      for await (const e of w.mesh.watch("svc", { signal: controller.signal }))
        if (e.type === "down") downs.push(e.instance.id);
    })();
    const counts = await tally(w, 20, { balance: "round-robin" });
    expect(new Set(counts.keys())).toEqual(new Set([live.id]));
    expect(downs).toEqual([ghost.id]);
    controller.abort();
    await watching;
  });

  it("retries OVERLOADED on another instance", async () => {
    const w = await world({ retries: 1 });
    const busy = await startAgent({
      servers: server.url,
      prefix: w.prefix,
      service: "svc",
      concurrency: 1,
      methods: {
        who: async (_p: unknown, ctx: RequestContext) => {
          await sleep(300);
          return ctx.instance.id;
        },
      },
    });
    w.agents.push(busy);
    await put(w, busy.record);
    const spare = await agent(w);
    const held = w.mesh.request("svc", "who", null, { balance: "round-robin" });
    // Every other call lands on the busy instance first; none may fail.
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        w.mesh.request("svc", "who", null, { balance: "round-robin" }),
      ),
    );
    expect(results.filter((id) => id === spare.id).length).toBeGreaterThanOrEqual(5);
    await held;
  });

  it("refuses an unknown strategy with TypeError", async () => {
    const w = await world();
    await expect(
      w.mesh.request("svc", "who", null, { balance: "closest" as never }),
    ).rejects.toThrow(TypeError);
    expect(() => w.mesh.instances("bad.name")).toThrow(TypeError);
    await expect(connectMesh({ servers: server.url, presence: "yes" as never })).rejects.toThrow(
      TypeError,
    );
    const off = await connectMesh({ servers: server.url, presence: false });
    expect(() => off.instances()).toThrow(TypeError);
    await off.close();
    expect(isMeshError(new Error("x"))).toBe(false);
  });
});
