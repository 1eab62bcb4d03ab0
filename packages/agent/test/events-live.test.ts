import { setTimeout as sleep } from "node:timers/promises";
import type { EventContext } from "@natsmesh/agent";
import { uniquePrefix, until } from "@natsmesh/testing";
import { describe, expect, it } from "vitest";
import { eventSuite } from "./event-suite.js";

const s = eventSuite("evl");

describe("live events", () => {
  it("gives broadcast to every instance and group to one instance per service", async () => {
    const prefix = uniquePrefix("ev");
    const broadcast = new Map<string, number>();
    const group = new Map<string, number>();
    const count = (map: Map<string, number>) => (_p: unknown, ctx: EventContext) =>
      void map.set(ctx.instance.id, (map.get(ctx.instance.id) ?? 0) + 1);
    const events = {
      "cache.flush": { mode: "broadcast" as const, handler: count(broadcast) },
      "job.*": { mode: "group" as const, handler: count(group) },
    };
    const agents = [
      await s.agent(prefix, { service: "web", events }),
      await s.agent(prefix, { service: "web", events }),
      await s.agent(prefix, { service: "web", events }),
    ];
    const m = await s.mesh(prefix);
    m.broadcast("cache.flush", {});
    for (let i = 0; i < 30; i++) m.broadcast("job.run", { i });
    await m.connection.flush();
    await until(
      "deliveries",
      () => broadcast.size === 3 && [...group.values()].reduce((a, b) => a + b, 0) === 30,
    );
    for (const a of agents) expect(broadcast.get(a.id)).toBe(1);
    // Core NATS keeps no state to wait on: watch a quiet moment pass for a second delivery.
    await sleep(200);
    expect([...group.values()].reduce((a, b) => a + b, 0)).toBe(30);
  });

  it("lists subscriptions in the instance record", async () => {
    const prefix = uniquePrefix("ev");
    const a = await s.agent(prefix, {
      service: "web",
      methods: { ping: () => "pong" },
      events: {
        "order.*": () => undefined,
        "cache.>": { mode: "broadcast", handler: () => undefined },
      },
    });
    expect(a.record.events).toEqual([
      { pattern: "order.*", mode: "durable" },
      { pattern: "cache.>", mode: "broadcast" },
    ]);
  });
});
