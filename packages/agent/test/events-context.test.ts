import { jetstreamManager } from "@nats-io/jetstream";
import type { EventContext } from "@natsmesh/agent";
import { eventStream } from "@natsmesh/protocol";
import { uniquePrefix, until } from "@natsmesh/testing";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { eventSuite } from "./event-suite.js";

const s = eventSuite("evx");

/** A logger whose JSON lines land in `lines`. */
function capture(lines: Record<string, unknown>[]) {
  return pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
}

describe("event handler context", () => {
  it("gives durable handlers the stream's timestamp as publishedAt, the same on a redelivery, and a bound ctx.log", async () => {
    const prefix = uniquePrefix("ev");
    const lines: Record<string, unknown>[] = [];
    const seen: { publishedAt: number; deliveries: number; at: number; id: string; seq: number }[] =
      [];
    const agent = await s.agent(prefix, {
      service: "billing",
      logger: capture(lines),
      events: {
        "order.created": {
          backoffMs: [300],
          handler: (p: { n: number }, ctx: EventContext) => {
            const { publishedAt, deliveries, id, seq } = ctx.event;
            seen.push({ publishedAt, deliveries, id, seq, at: Date.now() });
            ctx.log.info({ n: p.n, deliveries }, "charging");
            if (deliveries === 1) throw new Error("ledger unreachable");
          },
        },
      },
    });
    const m = await s.mesh(prefix);
    const before = Date.now();
    const ack = await m.emit("order.created", { n: 7 }, { idempotencyKey: "order-7" });
    await until("the redelivery", () => seen.length === 2);
    await s.settled(prefix, "billing");

    const jsm = await jetstreamManager(s.t.nc);
    const stored = await jsm.streams.getMessage(eventStream(prefix), { seq: ack.seq });
    const [first, second] = seen;
    expect(first).toMatchObject({ deliveries: 1, id: "order-7", seq: ack.seq });
    expect(second).toMatchObject({ deliveries: 2, id: "order-7", seq: ack.seq });
    // When the stream stored it (to the millisecond), not when an instance received it.
    expect(Math.abs(first!.publishedAt - stored!.time.getTime())).toBeLessThanOrEqual(1);
    expect(first!.publishedAt).toBeGreaterThanOrEqual(before - 1);
    expect(second!.publishedAt).toBe(first!.publishedAt);
    expect(second!.at - second!.publishedAt).toBeGreaterThanOrEqual(300);

    const charging = lines.filter((l) => l.msg === "charging");
    expect(charging).toHaveLength(2);
    for (const [i, line] of charging.entries()) {
      expect(line).toMatchObject({
        level: 30,
        component: "agent",
        service: "billing",
        instance: agent.id,
        event: "order.created",
        eventId: "order-7",
        n: 7,
        deliveries: i + 1,
      });
      expect(line.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    }
  });

  it("gives live handlers the time they received the event as publishedAt, and a bound ctx.log", async () => {
    const prefix = uniquePrefix("ev");
    const lines: Record<string, unknown>[] = [];
    const seen: { publishedAt: number; at: number; id: string }[] = [];
    const agent = await s.agent(prefix, {
      service: "web",
      logger: capture(lines),
      events: {
        "cache.*": {
          mode: "broadcast",
          handler: (_p: unknown, ctx: EventContext) => {
            seen.push({ publishedAt: ctx.event.publishedAt, at: Date.now(), id: ctx.event.id });
            ctx.log.info("flushing");
          },
        },
      },
    });
    const m = await s.mesh(prefix);
    const before = Date.now();
    m.broadcast("cache.flush", {});
    await until("the broadcast", () => seen.length === 1);
    const [got] = seen;
    expect(got!.publishedAt).toBeGreaterThanOrEqual(before);
    expect(got!.publishedAt).toBeLessThanOrEqual(got!.at);
    expect(lines.find((l) => l.msg === "flushing")).toMatchObject({
      service: "web",
      instance: agent.id,
      event: "cache.flush",
      eventId: got!.id,
    });
  });
});
