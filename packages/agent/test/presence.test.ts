import { setTimeout as sleep } from "node:timers/promises";
import type { Subscription } from "@nats-io/nats-core";
import { startAgent } from "@natsmesh/agent";
import { type PresenceMessage, parsePresenceMessage } from "@natsmesh/protocol";
import { cleanup, setup, type TestSetup, uniquePrefix, until } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestSetup;

beforeAll(async () => {
  t = await setup();
});
afterAll(() => cleanup(t));

interface Listener {
  /** Every presence message that passed the registry's checks, in arrival order. */
  readonly messages: PresenceMessage[];
  /** Why each other message was refused: a test asserts this is empty. */
  readonly invalid: unknown[];
  readonly sub: Subscription;
  /** Waits until `check` holds or a message was refused; fails on any refusal. */
  waitFor(what: string, check: () => boolean): Promise<void>;
}

/**
 * Records every presence message of a prefix, validated as a registry would. A callback cannot
 * fail a test (nats.js runs it outside the test), so refusals are collected for the test.
 */
async function listen(prefix: string): Promise<Listener> {
  const messages: PresenceMessage[] = [];
  const invalid: unknown[] = [];
  const sub = t.nc.subscribe(`${prefix}.presence.*.*`, {
    callback: (err, msg) => {
      if (err) {
        invalid.push(err);
        return;
      }
      const parsed = parsePresenceMessage(msg.data, prefix);
      if (parsed.ok) messages.push(parsed.value);
      else invalid.push(parsed.error);
    },
  });
  await t.nc.flush();
  const waitFor = async (what: string, check: () => boolean) => {
    await until(what, () => invalid.length > 0 || check());
    expect(invalid).toEqual([]);
  };
  return { messages, invalid, sub, waitFor };
}

describe("agent presence", () => {
  it("announces up, heartbeats, re-announces on sync and update, drains then goes down", async () => {
    const prefix = uniquePrefix("p");
    const { messages, invalid, sub, waitFor } = await listen(prefix);
    const agent = await startAgent({
      servers: t.server.url,
      prefix,
      service: "echo",
      version: "2.0.0",
      zone: "z1",
      metadata: { team: "core" },
      heartbeatMs: 50,
      methods: { say: (p) => p },
    });
    await waitFor("two heartbeats", () => messages.filter((m) => m.kind === "hb").length >= 2);
    const up = messages[0];
    expect(up?.kind).toBe("up");
    if (up?.kind === "up") {
      expect(up.instance).toMatchObject({
        id: agent.id,
        service: "echo",
        version: "2.0.0",
        weight: 100,
        status: "ready",
        methods: ["say"],
        subject: `${prefix}.inst.echo.${agent.id}`,
        zone: "z1",
        metadata: { team: "core" },
        pid: process.pid,
      });
    }
    const hbs = messages.filter((m) => m.kind === "hb");
    expect(hbs.map((h) => h.kind === "hb" && h.seq)).toEqual(hbs.map((_, i) => i + 1));

    const ups = () => messages.filter((m) => m.kind === "up").length;
    const before = ups();
    t.nc.publish(`${prefix}.presence.sync`);
    await waitFor("the up answering the sync", () => ups() === before + 1);

    await agent.update({ weight: 7, metadata: { team: "edge" } });
    await waitFor("the up after update()", () => ups() === before + 2);
    const last = messages.filter((m) => m.kind === "up").at(-1);
    expect(last?.kind === "up" && last.instance.weight).toBe(7);
    expect(agent.record.metadata).toEqual({ team: "edge" });
    await expect(agent.update({ weight: -1 })).rejects.toThrow(TypeError);

    await agent.stop();
    await t.nc.flush();
    // The last `up` says draining; heartbeats may go on while it drains, and say so too; the
    // `down` comes last.
    const drainingAt = messages.map((m) => m.kind).lastIndexOf("up");
    const draining = messages[drainingAt];
    expect(draining?.kind === "up" && draining.instance.status).toBe("draining");
    const tail = messages.slice(drainingAt + 1);
    // Every message carries the same presence secret, fresh per start, 128 bits.
    const secret = messages[0]?.secret;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(messages.every((m) => m.secret === secret)).toBe(true);
    expect(tail.at(-1)).toEqual({
      kind: "down",
      service: "echo",
      id: agent.id,
      reason: "stopped",
      secret,
    });
    expect(tail.slice(0, -1).filter((m) => m.kind !== "hb" || m.status !== "draining")).toEqual([]);
    // Silence is not a condition to wait for: watch three heartbeat periods pass quietly.
    const count = messages.length;
    await sleep(150);
    expect(messages.length).toBe(count);
    expect(invalid).toEqual([]);
    sub.unsubscribe();
  });

  it("leaves nothing listening on a shared connection after stop()", async () => {
    const prefix = uniquePrefix("p");
    // nats.js keeps one listener per status() iterator; stopped agents must remove theirs.
    const listeners = () =>
      (t.nc as unknown as { protocol: { listeners: unknown[] } }).protocol.listeners.length;
    const before = listeners();
    for (let i = 0; i < 10; i++) {
      const a = await startAgent({
        connection: t.nc,
        prefix,
        service: "s",
        methods: { m: () => 1 },
      });
      await a.stop();
    }
    await expect.poll(listeners).toBe(before);
  });

  it("gives every start a new instance id", async () => {
    const prefix = uniquePrefix("p");
    const a = await startAgent({
      servers: t.server.url,
      prefix,
      service: "s",
      methods: { m: () => 1 },
    });
    const b = await startAgent({ connection: t.nc, prefix, service: "s", methods: { m: () => 1 } });
    expect(a.id).not.toBe(b.id);
    await Promise.all([a.stop(), b.stop()]);
    expect(t.nc.isClosed()).toBe(false);
  });
});
