import { setTimeout as sleep } from "node:timers/promises";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type EventContext, MeshError, startAgent } from "@natsmesh/agent";
import { codecs, eventStream, Header, patternId } from "@natsmesh/protocol";
import { replayDeadLetter } from "@natsmesh/protocol/internal";
import { connectMesh } from "@natsmesh/sdk";
import { startNatsServer, uniquePrefix, until } from "@natsmesh/testing";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { eventSuite } from "./event-suite.js";

const s = eventSuite("evd");

describe("durable events", () => {
  it("hands each event to exactly one instance of a service, and every service gets it", async () => {
    const prefix = uniquePrefix("ev");
    const billing = new Map<number, string[]>();
    const shipping = new Map<number, number>();
    const handler = (name: string) => (p: { n: number }, ctx: EventContext) => {
      billing.set(p.n, [...(billing.get(p.n) ?? []), `${name}:${ctx.instance.id}`]);
    };
    const b1 = await s.agent(prefix, {
      service: "billing",
      events: { "order.created": handler("b1") },
    });
    const b2 = await s.agent(prefix, {
      service: "billing",
      events: { "order.created": handler("b2") },
    });
    await s.agent(prefix, {
      service: "shipping",
      events: {
        "order.created": (p: { n: number }) => void shipping.set(p.n, (shipping.get(p.n) ?? 0) + 1),
      },
    });
    const m = await s.mesh(prefix);
    const n = 300;
    const acks = await Promise.all(
      Array.from({ length: n }, (_, i) => m.emit("order.created", { n: i })),
    );
    expect(new Set(acks.map((a) => a.seq)).size).toBe(n);
    expect(acks.every((a) => !a.duplicate)).toBe(true);
    await until("every event handled", () => billing.size === n && shipping.size === n);
    // Once the groups hold nothing more, no duplicate can follow; none came before either.
    expect(await s.settled(prefix, "billing")).toBe(n);
    expect(await s.settled(prefix, "shipping")).toBe(n);
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
    const first = await s.agent(prefix, { service: "billing", events });
    await first.stop();
    const m = await s.mesh(prefix);
    for (let i = 0; i < 20; i++) await m.emit("order.created", { n: i });
    await s.agent(prefix, { service: "billing", events });
    await until("the backlog", () => got.length === 20);
    expect(got.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it("starts a new consumer from new events, all of them, a time or a sequence", async () => {
    const prefix = uniquePrefix("ev");
    const m = await s.mesh(prefix);
    const first = await m.emit("a.b", 1);
    // A time strictly between the two stored timestamps (ms clock, ns timestamps).
    await sleep(20);
    const between = new Date();
    await sleep(20);
    const second = await m.emit("a.b", 2);
    const seen: Record<string, number[]> = { new: [], all: [], seq: [], date: [] };
    const sub = (key: string, startFrom: "new" | "all" | number | Date) => ({
      "a.b": { handler: (p: number) => void seen[key]!.push(p), startFrom },
    });
    await s.agent(prefix, { service: "fresh", events: sub("new", "new") });
    await s.agent(prefix, { service: "catchup", events: sub("all", "all") });
    await s.agent(prefix, { service: "fromseq", events: sub("seq", second.seq) });
    await s.agent(prefix, {
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
    await s.agent(prefix, {
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
    const m = await s.mesh(prefix);
    const ack = await m.emit("order.created", { id: 7 }, { idempotencyKey: "order-7" });
    await until("a dead letter", async () => (await s.deadLetters(prefix)).length === 1);
    expect(times).toHaveLength(3);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(180);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(380);
    const [letter] = await s.deadLetters(prefix, "billing");
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
    expect(await s.settled(prefix, "billing")).toBe(3);
    expect(times).toHaveLength(3);
  }, 20_000);

  it("replays a dead letter once, to the service that gave up on it only", async () => {
    const prefix = uniquePrefix("ev");
    let healthy = false;
    const billing: unknown[] = [];
    const audit: unknown[] = [];
    await s.agent(prefix, {
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
    await s.agent(prefix, {
      service: "audit",
      events: { "order.created": (p: unknown) => void audit.push(p) },
    });
    const m = await s.mesh(prefix);
    await m.emit("order.created", { id: 1 });
    await until(
      "the dead letter",
      async () => (await s.deadLetters(prefix)).length === 1 && audit.length === 1,
    );
    const [letter] = await s.deadLetters(prefix);
    healthy = true;
    const jsm = await jetstreamManager(s.t.nc);
    const replayed = await replayDeadLetter(jetstream(s.t.nc), jsm, prefix, letter!.dlqSeq);
    expect(replayed.id).toMatch(/:replay:/);
    await until("the replay", () => billing.length === 1);
    await s.settled(prefix, "billing");
    await s.settled(prefix, "audit");
    expect(billing).toEqual([{ id: 1 }]);
    expect(audit).toEqual([{ id: 1 }]);
    expect(await s.deadLetters(prefix)).toEqual([]);
    await expect(
      replayDeadLetter(jetstream(s.t.nc), jsm, prefix, letter!.dlqSeq),
    ).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
  });

  it("dead-letters a non-retryable MeshError at once, and retries a retryable one", async () => {
    const prefix = uniquePrefix("ev");
    let refused = 0;
    let overloaded = 0;
    await s.agent(prefix, {
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
    const m = await s.mesh(prefix);
    await m.emit("order.refused", {});
    await m.emit("order.busy", {});
    await until(
      "dead letter and retries",
      async () => overloaded === 3 && (await s.deadLetters(prefix)).length === 1,
    );
    const [letter] = await s.deadLetters(prefix);
    expect(letter).toMatchObject({
      code: "INSUFFICIENT_FUNDS",
      deliveries: 1,
      event: "order.refused",
    });
    expect(refused).toBe(1);
  });

  it("keeps the dead letter of every group when two overlapping groups of a service give up on one event", async () => {
    const prefix = uniquePrefix("ev");
    const refuse = () => {
      throw new MeshError("BAD_REQUEST", "refused");
    };
    // Both patterns match order.placed: each group gets the event and dead-letters it.
    await s.agent(prefix, { service: "billing", events: { "order.*": refuse, "order.>": refuse } });
    const m = await s.mesh(prefix);
    const { seq } = await m.emit("order.placed", {});
    await until("a dead letter from each group", async () => {
      const letters = await s.deadLetters(prefix);
      return letters.length === 2;
    });
    const letters = await s.deadLetters(prefix);
    for (const letter of letters) {
      expect(letter).toMatchObject({ valid: true, service: "billing", event: "order.placed", seq });
    }
  });

  it("stores an event emitted twice with the same id once", async () => {
    const prefix = uniquePrefix("ev");
    let handled = 0;
    await s.agent(prefix, {
      service: "billing",
      events: { "order.created": () => void handled++ },
    });
    const m = await s.mesh(prefix);
    const a = await m.emit("order.created", { n: 1 }, { idempotencyKey: "same" });
    const b = await m.emit("order.created", { n: 1 }, { idempotencyKey: "same" });
    expect(b).toEqual({ ...a, duplicate: true });
    await until("handled", () => handled === 1);
    expect(await s.settled(prefix, "billing")).toBe(1);
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
          await sleep(2);
          got.push(p);
        },
      },
    };
    await s.agent(prefix, { service: "ledger", events });
    await s.agent(prefix, { service: "ledger", events });
    const m = await s.mesh(prefix);
    await Promise.all(Array.from({ length: 40 }, (_, i) => m.emit(`seq.n${i % 3}`, i)));
    await until("all in order", () => got.length === 40, { timeoutMs: 20_000 });
    // Emits were pipelined, so stream order is publish order.
    expect(got).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(failedOnce).toBe(true);
  }, 30_000);

  it("matches * and > patterns", async () => {
    const prefix = uniquePrefix("ev");
    const star: string[] = [];
    const rest: string[] = [];
    await s.agent(prefix, {
      service: "audit",
      events: {
        "order.*": (_p: unknown, ctx: EventContext) => void star.push(ctx.event.name),
        "order.>": (_p: unknown, ctx: EventContext) => void rest.push(ctx.event.name),
      },
    });
    const m = await s.mesh(prefix);
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
    await s.agent(prefix, {
      service: "slow",
      events: {
        "job.run": {
          concurrency: 2,
          ackWaitMs: 1000,
          handler: async (_p: unknown, ctx: EventContext) => {
            running++;
            peak = Math.max(peak, running);
            deliveries.push(ctx.event.deliveries);
            await sleep(2500);
            running--;
          },
        },
      },
    });
    const m = await s.mesh(prefix);
    await Promise.all(Array.from({ length: 4 }, () => m.emit("job.run", {})));
    await until("all four", () => deliveries.length === 4 && running === 0, {
      timeoutMs: 20_000,
    });
    expect(peak).toBe(2);
    // Each ran past the ack wait (2.5 s > 1 s) and was never redelivered.
    expect(deliveries).toEqual([1, 1, 1, 1]);
  }, 30_000);

  it("aborts a handler past its timeout and retries the event", async () => {
    const prefix = uniquePrefix("ev");
    const aborted: unknown[] = [];
    let calls = 0;
    await s.agent(prefix, {
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
    const m = await s.mesh(prefix);
    await m.emit("job.run", {});
    await until("the retry", () => calls === 2);
    expect(aborted).toHaveLength(1);
    expect(aborted[0]).toMatchObject({ code: "DEADLINE_EXCEEDED" });
  });
});

describe("event resources", () => {
  it("uses an existing stream with other settings as it is, and warns", async () => {
    const prefix = uniquePrefix("ev");
    const jsm = await jetstreamManager(s.t.nc);
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
    await s.agent(prefix, {
      service: "billing",
      logger,
      events: { a: (p: number) => void got.push(p) },
    });
    const m = await s.mesh(prefix);
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

  it("uses an existing durable consumer with other settings as it is, and warns", async () => {
    const prefix = uniquePrefix("ev");
    const m = await s.mesh(prefix);
    // Creates the streams; stored before the consumer exists, so never delivered to it.
    await m.emit("a", 0);
    const jsm = await jetstreamManager(s.t.nc);
    const durable = `billing__${patternId("a")}`;
    const theirs = {
      durable_name: durable,
      filter_subject: `${prefix}.evt.a`,
      ack_policy: AckPolicy.Explicit,
      ack_wait: 60_000 * 1e6,
      max_deliver: 10,
      max_ack_pending: 7,
      deliver_policy: DeliverPolicy.New,
    };
    await jsm.consumers.add(eventStream(prefix), theirs);
    const lines: { level: number; msg: string; consumer?: string; differences?: string[] }[] = [];
    const logger = pino(
      { level: "info" },
      { write: (line: string) => void lines.push(JSON.parse(line)) },
    );
    const got: number[] = [];
    await s.agent(prefix, {
      service: "billing",
      logger,
      events: { a: (p: number) => void got.push(p) },
    });
    await m.emit("a", 1);
    await until("the event", () => got.length === 1);
    expect(got).toEqual([1]);
    const info = await jsm.consumers.info(eventStream(prefix), durable);
    expect(info.config).toMatchObject({
      ack_wait: theirs.ack_wait,
      max_deliver: 10,
      max_ack_pending: 7,
    });
    const about = lines.filter((l) => l.consumer === durable);
    expect(about.map((l) => l.msg)).toEqual([
      "the consumer exists with other settings; using it as it is",
    ]);
    expect(about[0]!.level).toBe(40);
    expect(about[0]!.differences).toEqual([
      "ack_wait is 60000000000, not 30000000000",
      "max_deliver is 10, not -1",
      "max_ack_pending is 7, not 1000",
    ]);
  });
});

describe("without JetStream", () => {
  it("refuses to start durable subscriptions with UNAVAILABLE, and runs live ones", async () => {
    await using server = await startNatsServer({ jetstream: false });
    const err = await startAgent({
      servers: server.url,
      service: "billing",
      events: { "order.created": () => undefined },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe("UNAVAILABLE");
    const got: unknown[] = [];
    await using live = await startAgent({
      servers: server.url,
      service: "web",
      events: { "cache.*": { mode: "broadcast", handler: (p: unknown) => void got.push(p) } },
    });
    await using m = await connectMesh({ servers: server.url, presence: false });
    m.broadcast("cache.flush", { all: true });
    await until("the broadcast", () => got.length === 1);
    expect(live.record.events).toEqual([{ pattern: "cache.*", mode: "broadcast" }]);
  });
});
