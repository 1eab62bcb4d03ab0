import { headers as natsHeaders } from "@nats-io/nats-core";
import { startAgent } from "@natsmesh/agent";
import { generateKeyPair, issueToken, type MeshKeyPair } from "@natsmesh/protocol";
import { startRegistry } from "@natsmesh/registry";
import { cleanup, setup, type TestSetup, uniquePrefix, waitUntil } from "@natsmesh/testing";
import { type Logger, pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// An agent whose announcements the registry refuses keeps serving its queue subject but is out
// of the presence bucket. Neither side may keep quiet about it: the registry warns (once per
// instance and interval, and a bounded number of lines for a flood), and the agent warns when
// it has not appeared in the bucket within a few heartbeats, and says so when it does.

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

function capture(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: "debug" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { logger, lines };
}

const WARN = 40;
const missing = (l: LogLine) => l.level === WARN && l.presence === "missing";

let t: TestSetup;
let keys: MeshKeyPair;
beforeAll(async () => {
  t = await setup({ tag: "unann" });
  keys = await generateKeyPair();
});
afterAll(() => cleanup(t));

const methods = { ping: () => "pong" };

describe("refused announcements are visible", () => {
  it("the registry warns once per instance; the agent warns it is not in the bucket", async () => {
    const prefix = uniquePrefix("refused");
    const reg = capture();
    await using registry = await startRegistry({
      servers: t.server.url,
      prefix,
      heartbeatTimeoutMs: 600,
      auth: { jwks: keys.jwks, signingKey: keys.privateJwk },
      logger: reg.logger,
    });
    const wrong = capture();
    const none = capture();
    const token = await issueToken({ key: keys.privateJwk, sub: "payer", scope: "billing.charge" });
    await using wrongScope = await startAgent({
      servers: t.server.url,
      prefix,
      service: "pay",
      methods,
      token,
      heartbeatMs: 100,
      logger: wrong.logger,
    });
    await using noToken = await startAgent({
      servers: t.server.url,
      prefix,
      service: "anon",
      methods,
      heartbeatMs: 100,
      logger: none.logger,
    });
    // The agents look after 5 heartbeats, at least 1 s: by then ten or more messages were refused.
    expect(await waitUntil(() => wrong.lines.some(missing), { timeoutMs: 10_000 })).toBe(true);
    expect(await waitUntil(() => none.lines.some(missing), { timeoutMs: 10_000 })).toBe(true);
    expect(wrong.lines.find(missing)).toMatchObject({
      instance: wrongScope.id,
      presence: "missing",
    });
    expect(registry.stats.unauthorized).toBeGreaterThanOrEqual(20);
    const refusals = (id: string) =>
      reg.lines.filter((l) => l.level === WARN && String(l.key).endsWith(`.${id}`));
    expect(refusals(wrongScope.id)).toEqual([
      expect.objectContaining({ key: `pay.${wrongScope.id}`, code: "FORBIDDEN", sub: "payer" }),
    ]);
    expect(refusals(noToken.id)).toEqual([
      expect.objectContaining({ key: `anon.${noToken.id}`, code: "UNAUTHENTICATED" }),
    ]);
  });

  it("a flood of invented instances is a bounded number of lines", async () => {
    const prefix = uniquePrefix("flood");
    const reg = capture();
    await using registry = await startRegistry({
      servers: t.server.url,
      prefix,
      auth: { jwks: keys.jwks, signingKey: keys.privateJwk },
      logger: reg.logger,
    });
    const h = natsHeaders();
    h.set("Authorization", "Bearer not-a-token");
    for (let i = 0; i < 500; i++) {
      const id = `FAKE${i}`;
      t.nc.publish(
        `${prefix}.presence.svc.${id}`,
        JSON.stringify({ kind: "hb", service: "svc", id, seq: 1, inflight: 0, status: "ready" }),
        { headers: h },
      );
    }
    await t.nc.flush();
    expect(await waitUntil(() => registry.stats.unauthorized >= 500, { timeoutMs: 10_000 })).toBe(
      true,
    );
    const warned = reg.lines.filter((l) => l.level === WARN && l.code !== undefined);
    expect(warned.length).toBeGreaterThan(0);
    expect(warned.length).toBeLessThanOrEqual(20);
  });

  it("an agent that appears late says so", async () => {
    const prefix = uniquePrefix("late");
    const log = capture();
    await using agent = await startAgent({
      servers: t.server.url,
      prefix,
      service: "late",
      methods,
      heartbeatMs: 100,
      logger: log.logger,
    });
    expect(await waitUntil(() => log.lines.some(missing), { timeoutMs: 10_000 })).toBe(true);
    await using registry = await startRegistry({
      servers: t.server.url,
      prefix,
      heartbeatTimeoutMs: 600,
      logger: pino({ level: "silent" }),
    });
    expect(registry.id).toBeDefined();
    const found = (l: LogLine) => l.level === 30 && l.presence === "found";
    expect(await waitUntil(() => log.lines.some(found), { timeoutMs: 15_000 })).toBe(true);
    expect(log.lines.find(found)).toMatchObject({ instance: agent.id });
  });

  it("an announced agent does not warn", async () => {
    const prefix = uniquePrefix("fine");
    const log = capture();
    await using registry = await startRegistry({
      servers: t.server.url,
      prefix,
      heartbeatTimeoutMs: 600,
      logger: pino({ level: "silent" }),
    });
    await using agent = await startAgent({
      servers: t.server.url,
      prefix,
      service: "fine",
      methods,
      heartbeatMs: 100,
      logger: log.logger,
    });
    // Past the first look (5 heartbeats, at least 1 s) and the next one: 35 heartbeats later.
    expect(await waitUntil(() => registry.stats.heartbeats >= 35, { timeoutMs: 15_000 })).toBe(
      true,
    );
    expect(agent.record.status).toBe("ready");
    expect(log.lines.filter((l) => l.level >= WARN)).toEqual([]);
  });
});
