import { setTimeout as sleep } from "node:timers/promises";
import { headers } from "@nats-io/nats-core";
import { type Agent, type RequestContext, startAgent } from "@natsmesh/agent";
import { Header, type PresenceMessage, parsePresenceMessage } from "@natsmesh/protocol";
import { cleanup, setup, type TestSetup, until } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Concurrency slots: a handler that ignores ctx.signal must not keep its slot forever, nor may
// `Mesh-Deadline: 9007199254740991` pin well-behaved ones; otherwise 256 such calls would leave
// every method answering OVERLOADED while presence still said "ready".

const CAP_MS = 600;
let t: TestSetup;
let agent: Agent;
let never = 0;
let lateResults = 0;
const signals: AbortSignal[] = [];
const deadlines: (number | undefined)[] = [];

beforeAll(async () => {
  t = await setup();
  agent = await startAgent({
    servers: t.server.url,
    prefix: t.prefix,
    service: "slow",
    maxCallMs: CAP_MS,
    heartbeatMs: 100,
    methods: {
      say: (p) => p,
      never: (_p, ctx: RequestContext) => {
        never++;
        signals.push(ctx.signal);
        deadlines.push(ctx.deadline);
        return new Promise(() => undefined);
      },
      late: async () => {
        await sleep(CAP_MS * 2);
        lateResults++;
        return "late";
      },
      polite: (_p, ctx: RequestContext) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
        }),
    },
  });
});

afterAll(() => cleanup(t, agent));

function request(method: string, deadline?: number) {
  const h = headers();
  if (deadline !== undefined) h.set(Header.Deadline, String(deadline));
  return t.nc.request(`${t.prefix}.inst.slow.${agent.id}.${method}`, "1", {
    timeout: 15_000,
    headers: h,
  });
}

const code = (m: { headers?: { get(k: string): string } }) => m.headers?.get(Header.MeshError);

describe("the deadline an agent honours", () => {
  it("frees all 256 slots pinned by a huge deadline and a handler that never settles", async () => {
    const sentAt = Date.now();
    const pinned = Array.from({ length: 256 }, () => request("never", Number.MAX_SAFE_INTEGER));
    await until("256 pinned calls", () => never >= 256);
    expect(code(await request("say"))).toBe("OVERLOADED");
    const answers = await Promise.all(pinned);
    for (const m of answers) expect(code(m)).toBe("DEADLINE_EXCEEDED");
    // Answered once the cap (plus the runaway grace) passed, not at the caller's deadline.
    expect(Date.now() - sentAt).toBeLessThan(CAP_MS + 5_000);
    expect((await request("say")).json()).toBe(1);
    expect(agent.stats().runaway).toBeGreaterThanOrEqual(256);
    expect(agent.stats().inflight).toBe(0);
    for (const s of signals) expect(s.aborted).toBe(true);
    for (const d of deadlines) expect(d).toBeLessThanOrEqual(sentAt + CAP_MS + 5_000);
  });

  it("caps a call without a deadline too", async () => {
    const before = deadlines.length;
    const sentAt = Date.now();
    expect(code(await request("never"))).toBe("DEADLINE_EXCEEDED");
    expect(deadlines[before]).toBeGreaterThanOrEqual(sentAt + CAP_MS - 50);
    expect(deadlines[before]).toBeLessThanOrEqual(Date.now());
  });

  it("answers once and drops a result that comes after the slot was taken back", async () => {
    const inbox = `_INBOX.late${Date.now()}`;
    const got: string[] = [];
    const sub = t.nc.subscribe(inbox, {
      callback: (_err, msg) => {
        got.push(code(msg) ?? msg.string());
      },
    });
    t.nc.publish(`${t.prefix}.inst.slow.${agent.id}.late`, "1", { reply: inbox });
    await until("the late result", () => lateResults === 1);
    await t.nc.flush();
    sub.unsubscribe();
    expect(got).toEqual(["DEADLINE_EXCEEDED"]);
  });

  it("does not count a handler that gives up on ctx.signal as a runaway", async () => {
    const before = agent.stats().runaway;
    expect(code(await request("polite", Date.now() + 200))).toBe("DEADLINE_EXCEEDED");
    expect(agent.stats().runaway).toBe(before);
  });
});

describe("saturation in presence", () => {
  it("announces saturated when a call finds no slot, and ready again once it drained", async () => {
    await until("status ready", () => agent.record.status === "ready");
    const seen: PresenceMessage[] = [];
    const sub = t.nc.subscribe(`${t.prefix}.presence.slow.${agent.id}`, {
      callback: (_err, msg) => {
        const m = parsePresenceMessage(msg.data, t.prefix);
        if (m.ok) seen.push(m.value);
      },
    });
    const pinned = Array.from({ length: 256 }, () => request("never", Date.now() + 60_000));
    await until("256 calls in flight", () => agent.stats().inflight === 256);
    expect(code(await request("say"))).toBe("OVERLOADED");
    expect(agent.record.status).toBe("saturated");
    await until("an up saying saturated", () =>
      seen.some((m) => m.kind === "up" && m.instance.status === "saturated"),
    );
    await until("a heartbeat saying saturated", () =>
      seen.some((m) => m.kind === "hb" && m.status === "saturated" && m.limit === 256),
    );
    await Promise.all(pinned);
    await until("status ready again", () => agent.record.status === "ready");
    await until("an up saying ready again", () =>
      seen.some((m, i) => m.kind === "up" && m.instance.status === "ready" && i > 0),
    );
    sub.unsubscribe();
    // Entering and leaving each announce once: no flapping while it drained.
    const ups = seen
      .filter((m) => m.kind === "up")
      .map((m) => (m.kind === "up" ? m.instance.status : ""));
    expect(ups).toEqual(["saturated", "ready"]);
  });
});

describe("maxCallMs", () => {
  it.each([0, -1, 1.5])("refuses %j with a TypeError before connecting", async (maxCallMs) => {
    await expect(
      startAgent({
        servers: "nats://127.0.0.1:1",
        service: "x",
        methods: { a: () => 1 },
        maxCallMs,
      }),
    ).rejects.toThrow(TypeError);
  });
});
