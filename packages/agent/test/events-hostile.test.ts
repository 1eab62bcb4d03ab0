import { jetstream } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { Header } from "@natsmesh/protocol";
import { uniquePrefix, until } from "@natsmesh/testing";
import { describe, expect, it } from "vitest";
import { eventSuite } from "./event-suite.js";

const s = eventSuite("evh");

describe("hostile events", () => {
  it("dead-letters undecodable, oversized, foreign and forged events with a clear code, and keeps going", async () => {
    const prefix = uniquePrefix("ev");
    const good: number[] = [];
    await s.agent(prefix, {
      service: "billing",
      maxEventBytes: 1024,
      maxElements: 50,
      maxDepth: 8,
      events: { ">": (p: { n: number }) => void good.push(p.n) },
    });
    const m = await s.mesh(prefix);
    const js = jetstream(s.t.nc);
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
    // Within the byte limit, but building far more values, or nesting deeper, than allowed.
    await js.publish(evt("many"), JSON.stringify(Array.from({ length: 200 }, () => 0)));
    await js.publish(evt("deep"), `${"[".repeat(20)}${"]".repeat(20)}`);
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
      async () => (await s.deadLetters(prefix)).length === 8 && good.length === 2,
    );
    const letters = await s.deadLetters(prefix);
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
      many: "PAYLOAD_TOO_LARGE",
      deep: "BAD_REQUEST",
      _invalid: "BAD_REQUEST",
      "bad.replay": "BAD_REQUEST",
    });
    expect(letters.every((l) => l.valid && l.service === "billing")).toBe(true);
    expect(good.sort()).toEqual([-1, 1]);
  });

  it("refuses a subscription option that makes no sense before connecting", async () => {
    const prefix = uniquePrefix("ev");
    await expect(
      s.agent(prefix, { service: "x", events: { "a..b": () => undefined } }),
    ).rejects.toThrow(TypeError);
    await expect(
      s.agent(prefix, {
        service: "x",
        events: { a: { mode: "group", ordered: true, handler: () => undefined } },
      }),
    ).rejects.toThrow(/durable subscriptions only/);
    await expect(s.agent(prefix, { service: "x" })).rejects.toThrow(/method or event/);
  });
});
