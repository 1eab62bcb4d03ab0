import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { type Agent, type EventContext, MeshError, startAgent } from "@natsmesh/agent";
import { codecs, eventStream, Header } from "@natsmesh/protocol";
import {
  listDeadLetters,
  replayDeadLetter,
  type StoredDeadLetter,
} from "@natsmesh/protocol/internal";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup, uniquePrefix, waitUntil } from "@natsmesh/testing";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

let t: TestSetup;
const started: (Agent | Mesh)[] = [];

beforeAll(async () => {
  t = await setup({ tag: "ev" });
});
afterEach(async () => {
  await cleanup(...started.splice(0));
});
afterAll(() => cleanup(t));

// Small streams: every test has its own prefix, so its own pair of streams on this server.
const streams = { maxBytes: 64 * 1024 ** 2, deadLetterMaxBytes: 16 * 1024 ** 2 };

type Options = Parameters<typeof startAgent>[0];

async function agent(prefix: string, options: Omit<Options, "prefix" | "servers">) {
  const a = await startAgent({ servers: t.server.url, prefix, streams, ...options });
  started.push(a);
  return a;
}

async function mesh(prefix: string, token?: string) {
  const m = await connectMesh({
    servers: t.server.url,
    prefix,
    presence: false,
    streams,
    ...(token === undefined ? {} : { token }),
  });
  started.push(m);
  return m;
}

async function deadLetters(prefix: string, service?: string): Promise<StoredDeadLetter[]> {
  const jsm = await jetstreamManager(t.nc);
  return listDeadLetters(jsm, prefix, { ...(service === undefined ? {} : { service }) });
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  if (!(await waitUntil(check, { timeoutMs }))) throw new Error(`timed out waiting for ${what}`);
}

describe("durable events", () => {
  it("hands each event to exactly one instance of a service, and every service gets it", async () => {
    const prefix = uniquePrefix("ev");
    const billing = new Map<number, string[]>();
    const shipping = new Map<number, number>();
    const handler = (name: string) => (p: { n: number }, ctx: EventContext) => {
      billing.set(p.n, [...(billing.get(p.n) ?? []), `${name}:${ctx.instance.id}`]);
    };
    const b1 = await agent(prefix, {
      service: "billing",
      events: { "order.created": handler("b1") },
    });
    const b2 = await agent(prefix, {
      service: "billing",
      events: { "order.created": handler("b2") },
    });
    await agent(prefix, {
      service: "shipping",
      events: {
        "order.created": (p: { n: number }) => void shipping.set(p.n, (shipping.get(p.n) ?? 0) + 1),
      },
    });
    const m = await mesh(prefix);
    const n = 300;
    const acks = await Promise.all(
      Array.from({ length: n }, (_, i) => m.emit("order.created", { n: i })),
    );
    expect(new Set(acks.map((a) => a.seq)).size).toBe(n);
    expect(acks.every((a) => !a.duplicate)).toBe(true);
    await until("every event handled", () => billing.size === n && shipping.size === n);
    // Settle a moment longer: a duplicate would arrive now.
    await new Promise((r) => setTimeout(r, 300));
    expect([...billing.values()].every((who) => who.length === 1)).toBe(true);
    expect([...shipping.values()].every((c) => c === 1)).toBe(true);
    const by = (id: string) => [...billing.values()].filter((w) => w[0]!.endsWith(id)).length;
    expect(by(b1.id)).toBeGreaterThan(0);
    expect(by(b2.id)).toBeGreaterThan(0);
  }, 30_000);

  it("hands over what was emitted while the service was down once it starts again", async () => {
    const prefix = uniquePrefix("ev");
    const got: number[] = [];
    const events = { "order.created": (p: { n: number }) => void got.push(p.n) };
    const first = await agent(prefix, { service: "billing", events });
    await first.stop();
    const m = await mesh(prefix);
    for (let i = 0; i < 20; i++) await m.emit("order.created", { n: i });
    await agent(prefix, { service: "billing", events });
    await until("the backlog", () => got.length === 20);
    expect(got.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it("starts a new consumer from new events, all of them, a time or a sequence", async () => {
    const prefix = uniquePrefix("ev");
    const m = await mesh(prefix);
    const first = await m.emit("a.b", 1);
    await new Promise((r) => setTimeout(r, 20));
    const between = new Date();
    await new Promise((r) => setTimeout(r, 20));
    const second = await m.emit("a.b", 2);
    const seen: Record<string, number[]> = { new: [], all: [], seq: [], date: [] };
    const sub = (key: string, startFrom: "new" | "all" | number | Date) => ({
      "a.b": { handler: (p: number) => void seen[key]!.push(p), startFrom },
    });
    await agent(prefix, { service: "fresh", events: sub("new", "new") });
    await agent(prefix, { service: "catchup", events: sub("all", "all") });
    await agent(prefix, { service: "fromseq", events: sub("seq", second.seq) });
    await agent(prefix, {
      service: "fromdate",
      events: sub("date", between),
    });
    expect(first.seq).toBe(second.seq - 1);
    await m.emit("a.b", 3);
    await until(
      "catch-up",
      () =>
        seen.all!.length === 3 &&
        seen.seq!.length === 2 &&
        seen.date!.length === 2 &&
        seen.new!.length === 1,
    );
    expect(seen.all!.sort()).toEqual([1, 2, 3]);
    expect(seen.seq!.sort()).toEqual([2, 3]);
    expect(seen.new).toEqual([3]);
    expect(seen.date!.sort()).toEqual([2, 3]);
  });

  it("retries a failing handler with backoff, then dead-letters it with the contract's headers", async () => {
    const prefix = uniquePrefix("ev");
    const times: number[] = [];
    await agent(prefix, {
      service: "billing",
      events: {
        "order.created": {
          handler: () => {
            times.push(Date.now());
            throw new Error("database down");
          },
          maxDeliver: 3,
          backoffMs: [200, 400],
        },
      },
    });
    const m = await mesh(prefix);
    const ack = await m.emit("order.created", { id: 7 }, { idempotencyKey: "order-7" });
    await until("a dead letter", async () => (await deadLetters(prefix)).length === 1);
    expect(times).toHaveLength(3);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(180);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(380);
    const [letter] = await deadLetters(prefix, "billing");
    expect(letter).toMatchObject({
      valid: true,
      service: "billing",
      event: "order.created",
      code: "INTERNAL",
      message: "database down",
      deliveries: 3,
      seq: ack.seq,
      eventId: "order-7",
      subject: `${prefix}.evt.order.created`,
    });
    if (letter?.valid) {
      expect(codecs.msgpack.decode(letter.data)).toEqual({ id: 7 });
      expect(letter.headers?.get(Header.ContentType)).toBe("application/msgpack");
    }
    await new Promise((r) => setTimeout(r, 500));
    expect(times).toHaveLength(3);
  }, 20_000);

  it("replays a dead letter once, to the service that gave up on it only", async () => {
    const prefix = uniquePrefix("ev");
    let healthy = false;
    const billing: unknown[] = [];
    const audit: unknown[] = [];
    await agent(prefix, {
      service: "billing",
      events: {
        "order.created": {
          maxDeliver: 1,
          handler: (p: unknown) => {
            if (!healthy) throw new Error("not yet");
            billing.push(p);
          },
        },
      },
    });
    await agent(prefix, {
      service: "audit",
      events: { "order.created": (p: unknown) => void audit.push(p) },
    });
    const m = await mesh(prefix);
    await m.emit("order.created", { id: 1 });
    await until(
      "the dead letter",
      async () => (await deadLetters(prefix)).length === 1 && audit.length === 1,
    );
    const [letter] = await deadLetters(prefix);
    healthy = true;
    const jsm = await jetstreamManager(t.nc);
    const replayed = await replayDeadLetter(jetstream(t.nc), jsm, prefix, letter!.dlqSeq);
    expect(replayed.id).toMatch(/:replay:/);
    await until("the replay", () => billing.length === 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(billing).toEqual([{ id: 1 }]);
    expect(audit).toEqual([{ id: 1 }]);
    expect(await deadLetters(prefix)).toEqual([]);
    await expect(
      replayDeadLetter(jetstream(t.nc), jsm, prefix, letter!.dlqSeq),
    ).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
  });

  it("dead-letters a non-retryable MeshError at once, and retries a retryable one", async () => {
    const prefix = uniquePrefix("ev");
    let refused = 0;
    let overloaded = 0;
    await agent(prefix, {
      service: "billing",
      events: {
        "order.refused": () => {
          refused++;
          throw new MeshError("INSUFFICIENT_FUNDS", "no money", { status: 409 });
        },
        "order.busy": {
          handler: () => {
            if (++overloaded < 3) throw new MeshError("OVERLOADED", "busy");
          },
          backoffMs: [50],
        },
      },
    });
    const m = await mesh(prefix);
    await m.emit("order.refused", {});
    await m.emit("order.busy", {});
    await until(
      "dead letter and retries",
      async () => overloaded === 3 && (await deadLetters(prefix)).length === 1,
    );
    const [letter] = await deadLetters(prefix);
    expect(letter).toMatchObject({
      code: "INSUFFICIENT_FUNDS",
      deliveries: 1,
      event: "order.refused",
    });
    expect(refused).toBe(1);
  });

  it("stores an event emitted twice with the same id once", async () => {
    const prefix = uniquePrefix("ev");
    let handled = 0;
    await agent(prefix, { service: "billing", events: { "order.created": () => void handled++ } });
    const m = await mesh(prefix);
    const a = await m.emit("order.created", { n: 1 }, { idempotencyKey: "same" });
    const b = await m.emit("order.created", { n: 1 }, { idempotencyKey: "same" });
    expect(b).toEqual({ ...a, duplicate: true });
    await until("handled", () => handled === 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(handled).toBe(1);
  });

  it("keeps order across the group with ordered: true, even through retries", async () => {
    const prefix = uniquePrefix("ev");
    const got: number[] = [];
    let failedOnce = false;
    const events = {
      "seq.>": {
        ordered: true,
        backoffMs: [50],
        handler: async (p: number) => {
          if (p === 10 && !failedOnce) {
            failedOnce = true;
            throw new Error("transient");
          }
          await new Promise((r) => setTimeout(r, 2));
          got.push(p);
        },
      },
    };
    await agent(prefix, { service: "ledger", events });
    await agent(prefix, { service: "ledger", events });
    const m = await mesh(prefix);
    await Promise.all(Array.from({ length: 40 }, (_, i) => m.emit(`seq.n${i % 3}`, i)));
    await until("all in order", () => got.length === 40, 20_000);
    // Emits were pipelined, so stream order is publish order.
    expect(got).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(failedOnce).toBe(true);
  }, 30_000);

  it("matches * and > patterns", async () => {
    const prefix = uniquePrefix("ev");
    const star: string[] = [];
    const rest: string[] = [];
    await agent(prefix, {
      service: "audit",
      events: {
        "order.*": (_p: unknown, ctx: EventContext) => void star.push(ctx.event.name),
        "order.>": (_p: unknown, ctx: EventContext) => void rest.push(ctx.event.name),
      },
    });
    const m = await mesh(prefix);
    for (const name of ["order.created", "order.eu.created", "user.created", "order"]) {
      await m.emit(name, {});
    }
    await until("both patterns", () => star.length === 1 && rest.length === 2);
    expect(star).toEqual(["order.created"]);
    expect(rest.sort()).toEqual(["order.created", "order.eu.created"]);
  });

  it("runs no more handlers at once than concurrency, and keeps long ones with progress acks", async () => {
    const prefix = uniquePrefix("ev");
    let running = 0;
    let peak = 0;
    const deliveries: number[] = [];
    await agent(prefix, {
      service: "slow",
      events: {
        "job.run": {
          concurrency: 2,
          ackWaitMs: 1000,
          handler: async (_p: unknown, ctx: EventContext) => {
            running++;
            peak = Math.max(peak, running);
            deliveries.push(ctx.event.deliveries);
            await new Promise((r) => setTimeout(r, 2500));
            running--;
          },
        },
      },
    });
    const m = await mesh(prefix);
    await Promise.all(Array.from({ length: 4 }, () => m.emit("job.run", {})));
    await until("all four", () => deliveries.length === 4 && running === 0, 20_000);
    expect(peak).toBe(2);
    // Each ran past the ack wait (2.5 s > 1 s) and was never redelivered.
    expect(deliveries).toEqual([1, 1, 1, 1]);
  }, 30_000);

  it("aborts a handler past its timeout and retries the event", async () => {
    const prefix = uniquePrefix("ev");
    const aborted: unknown[] = [];
    let calls = 0;
    await agent(prefix, {
      service: "slow",
      events: {
        "job.run": {
          timeoutMs: 200,
          backoffMs: [50],
          handler: (_p: unknown, ctx: EventContext) =>
            new Promise<void>((resolve) => {
              if (++calls >= 2) return resolve();
              ctx.signal.addEventListener("abort", () => aborted.push(ctx.signal.reason));
            }),
        },
      },
    });
    const m = await mesh(prefix);
    await m.emit("job.run", {});
    await until("the retry", () => calls === 2, 10_000);
    expect(aborted).toHaveLength(1);
    expect(aborted[0]).toMatchObject({ code: "DEADLINE_EXCEEDED" });
  });
});

describe("event resources", () => {
  it("uses an existing stream with other settings as it is, and warns", async () => {
    const prefix = uniquePrefix("ev");
    const jsm = await jetstreamManager(t.nc);
    await jsm.streams.add({
      name: eventStream(prefix),
      subjects: [`${prefix}.evt.>`],
      max_age: 3600 * 1e9,
    });
    const warnings: { msg: string; stream?: string; differences?: string[] }[] = [];
    const logger = pino(
      { level: "warn" },
      { write: (line: string) => void warnings.push(JSON.parse(line)) },
    );
    const got: number[] = [];
    await agent(prefix, {
      service: "billing",
      logger,
      events: { a: (p: number) => void got.push(p) },
    });
    const m = await mesh(prefix);
    await m.emit("a", 1);
    await until("the event", () => got.length === 1);
    const info = await jsm.streams.info(eventStream(prefix));
    expect(info.config.max_age).toBe(3600 * 1e9);
    const warning = warnings.find((w) => w.stream === eventStream(prefix));
    expect(warning?.msg).toMatch(/exists with other settings/);
    expect(warning?.differences).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^max_age/),
        expect.stringMatching(/^max_bytes/),
      ]),
    );
  });
});

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
      await agent(prefix, { service: "web", events }),
      await agent(prefix, { service: "web", events }),
      await agent(prefix, { service: "web", events }),
    ];
    const m = await mesh(prefix);
    m.broadcast("cache.flush", {});
    for (let i = 0; i < 30; i++) m.broadcast("job.run", { i });
    await m.connection.flush();
    await until(
      "deliveries",
      () => broadcast.size === 3 && [...group.values()].reduce((a, b) => a + b, 0) === 30,
    );
    for (const a of agents) expect(broadcast.get(a.id)).toBe(1);
    await new Promise((r) => setTimeout(r, 200));
    expect([...group.values()].reduce((a, b) => a + b, 0)).toBe(30);
  });

  it("lists subscriptions in the instance record", async () => {
    const prefix = uniquePrefix("ev");
    const a = await agent(prefix, {
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

describe("hostile events", () => {
  it("dead-letters undecodable, oversized, foreign and forged events with a clear code, and keeps going", async () => {
    const prefix = uniquePrefix("ev");
    const good: number[] = [];
    await agent(prefix, {
      service: "billing",
      maxEventBytes: 1024,
      events: { ">": (p: { n: number }) => void good.push(p.n) },
    });
    const m = await mesh(prefix);
    const js = jetstream(t.nc);
    const h = (entries: Record<string, string>) => {
      const out = natsHeaders();
      for (const [k, v] of Object.entries(entries)) out.set(k, v);
      return out;
    };
    const evt = (name: string) => `${prefix}.evt.${name}`;
    await js.publish(evt("bad.msgpack"), new Uint8Array([0xc1]), {
      headers: h({ [Header.ContentType]: "application/msgpack" }),
    });
    await js.publish(evt("bad.json"), "{not json");
    await js.publish(evt("bad.type"), "x", { headers: h({ [Header.ContentType]: "text/plain" }) });
    await js.publish(evt("big"), JSON.stringify({ pad: "x".repeat(2000) }));
    await js.publish(evt("a.b.c.d.e.f.g.h.i"), "{}");
    await js.publish(evt("bad.replay"), "{}", {
      headers: h({ [Header.ReplayService]: "no such!" }),
    });
    // Forged dead-letter headers on an event are replaced, never trusted.
    await js.publish(evt("forged"), JSON.stringify({ n: -1 }), {
      headers: h({ [Header.DlqService]: "victim", [Header.MeshError]: "FAKE" }),
    });
    await m.emit("ok", { n: 1 });
    await until(
      "dead letters",
      async () => (await deadLetters(prefix)).length === 6 && good.length === 2,
    );
    const letters = await deadLetters(prefix);
    const codes = Object.fromEntries(
      letters.map((l) => (l.valid ? [l.event, l.code] : [l.dlqSubject, "invalid"])),
    );
    const invalid = letters.find((l) => l.valid && l.event === "_invalid");
    expect(invalid?.valid && invalid.replayable).toBe(false);
    expect(invalid?.valid && invalid.subject).toBe(`${prefix}.evt.a.b.c.d.e.f.g.h.i`);
    expect(codes).toEqual({
      "bad.msgpack": "BAD_REQUEST",
      "bad.json": "BAD_REQUEST",
      "bad.type": "BAD_REQUEST",
      big: "PAYLOAD_TOO_LARGE",
      _invalid: "BAD_REQUEST",
      "bad.replay": "BAD_REQUEST",
    });
    expect(letters.every((l) => l.valid && l.service === "billing")).toBe(true);
    expect(good.sort()).toEqual([-1, 1]);
  });

  it("refuses a subscription option that makes no sense before connecting", async () => {
    const prefix = uniquePrefix("ev");
    await expect(
      agent(prefix, { service: "x", events: { "a..b": () => undefined } }),
    ).rejects.toThrow(TypeError);
    await expect(
      agent(prefix, {
        service: "x",
        events: { a: { mode: "group", ordered: true, handler: () => undefined } },
      }),
    ).rejects.toThrow(/durable subscriptions only/);
    await expect(agent(prefix, { service: "x" })).rejects.toThrow(/method or event/);
  });
});
