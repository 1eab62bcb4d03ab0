import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { type Agent, type EventContext, startAgent } from "@natsmesh/agent";
import { generateKeyPair, Header, issueToken, type MeshKeyPair } from "@natsmesh/protocol";
import { listDeadLetters } from "@natsmesh/protocol/internal";
import { connectMesh, MeshError } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup, uniquePrefix, until } from "@natsmesh/testing";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestSetup;
let keys: MeshKeyPair;
const streams = { maxBytes: 64 * 1024 ** 2, deadLetterMaxBytes: 16 * 1024 ** 2 };

beforeAll(async () => {
  t = await setup({ tag: "eva" });
  keys = await generateKeyPair();
});
afterAll(() => cleanup(t));

const token = (scope: string, ttl: number | string = 3600) =>
  issueToken({ key: keys.privateJwk, sub: "orders", scope, ttl });

async function publish(prefix: string, event: string, authorization?: string) {
  const h = natsHeaders();
  h.set(Header.ContentType, "application/json");
  if (authorization !== undefined) h.set(Header.Authorization, authorization);
  return jetstream(t.nc).publish(`${prefix}.evt.${event}`, JSON.stringify({ event }), {
    headers: h,
  });
}

describe("events with auth", () => {
  it("dead-letters missing, expired-at-publish and wrong-scope tokens; accepts a token that expired later", async () => {
    const prefix = uniquePrefix("eva");
    const handled: { event: string; sub: string | undefined }[] = [];
    const start = () =>
      startAgent({
        servers: t.server.url,
        prefix,
        streams,
        service: "billing",
        // No clock skew, so "expired since" needs a second here rather than half a minute.
        auth: { jwks: keys.jwks, clockToleranceSec: 0 },
        events: {
          "order.>": (p: { event: string }, ctx: EventContext) =>
            void handled.push({ event: p.event, sub: ctx.caller?.sub }),
        },
      });
    let agent: Agent | undefined = await start();
    try {
      // The consumer exists; stop the only instance so events wait in the stream.
      await agent.stop();
      const shortLived = await token("emit:order.>", 1);
      await publish(prefix, "order.missing");
      await publish(prefix, "order.expired", `Bearer ${await token("emit:order.>", -5)}`);
      await publish(prefix, "order.scope", `Bearer ${await token("emit:user.*")}`);
      await publish(prefix, "order.garbage", "Bearer not.a.jwt");
      await publish(prefix, "order.later", `Bearer ${shortLived}`);
      // Past the short-lived token's expiry before anyone verifies it.
      const { exp } = JSON.parse(Buffer.from(shortLived.split(".")[1]!, "base64url").toString());
      await until("the short-lived token to expire", () => Date.now() >= exp * 1000, {
        intervalMs: 10,
      });
      agent = await start();
      const jsm = await jetstreamManager(t.nc);
      await until(
        "four dead letters and one handled event",
        async () => (await listDeadLetters(jsm, prefix)).length === 4 && handled.length === 1,
      );
      expect(handled).toEqual([{ event: "order.later", sub: "orders" }]);
      const codes = Object.fromEntries(
        (await listDeadLetters(jsm, prefix)).map((l) => (l.valid ? [l.event, l.code] : [])),
      );
      expect(codes).toEqual({
        "order.missing": "UNAUTHENTICATED",
        "order.expired": "UNAUTHENTICATED",
        "order.scope": "FORBIDDEN",
        "order.garbage": "UNAUTHENTICATED",
      });
    } finally {
      await cleanup(agent);
    }
  }, 30_000);

  it("refuses an emit the SDK's own token does not allow, before publishing", async () => {
    const prefix = uniquePrefix("eva");
    await using mesh = await connectMesh({
      servers: t.server.url,
      prefix,
      presence: false,
      streams,
      token: await token("emit:user.* billing.*"),
    });
    const err = await mesh.emit("order.created", {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe("FORBIDDEN");
    expect(() => mesh.broadcast("order.created", {})).toThrow(
      expect.objectContaining({ code: "FORBIDDEN" }),
    );
    await expect(mesh.emit("user.created", {})).resolves.toMatchObject({ seq: 1 });
  });

  it("drops live events whose token does not allow them", async () => {
    const prefix = uniquePrefix("eva");
    const handled: string[] = [];
    const dropped: { code: string; subject: string }[] = [];
    const logger = pino(
      { level: "warn" },
      {
        write: (line: string) => {
          const entry = JSON.parse(line);
          if (entry.msg === "event dropped")
            dropped.push({ code: entry.code, subject: entry.subject });
        },
      },
    );
    await using _agent = await startAgent({
      servers: t.server.url,
      prefix,
      streams,
      service: "web",
      logger,
      auth: { jwks: keys.jwks },
      events: {
        "cache.*": {
          mode: "broadcast",
          handler: (_p: unknown, ctx: EventContext) => void handled.push(ctx.event.name),
        },
      },
    });
    const h = (authorization?: string) => {
      const out = natsHeaders();
      if (authorization !== undefined) out.set(Header.Authorization, authorization);
      return out;
    };
    t.nc.publish(`${prefix}.evt.cache.none`, "{}", { headers: h() });
    t.nc.publish(`${prefix}.evt.cache.scope`, "{}", {
      headers: h(`Bearer ${await token("emit:user.*")}`),
    });
    t.nc.publish(`${prefix}.evt.cache.ok`, "{}", {
      headers: h(`Bearer ${await token("emit:cache.*")}`),
    });
    await until("one event handled and two dropped", () => handled.length + dropped.length === 3);
    expect(handled).toEqual(["cache.ok"]);
    expect(dropped.sort((a, b) => a.code.localeCompare(b.code))).toEqual([
      { code: "FORBIDDEN", subject: `${prefix}.evt.cache.scope` },
      { code: "UNAUTHENTICATED", subject: `${prefix}.evt.cache.none` },
    ]);
  });
});
