import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { startAgent } from "@natsmesh/agent";
import { type PresenceMessage, parsePresenceMessage } from "@natsmesh/protocol";
import { type NatsServer, startNatsServer } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let server: NatsServer;
let nc: NatsConnection;
let seq = 0;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

/** Records every presence message of a prefix, validated as a registry would. */
async function listen(prefix: string): Promise<{ messages: PresenceMessage[]; sub: Subscription }> {
  const messages: PresenceMessage[] = [];
  const sub = nc.subscribe(`${prefix}.presence.*.*`, {
    callback: (_err, msg) => {
      const parsed = parsePresenceMessage(msg.data, prefix);
      if (!parsed.ok) throw parsed.error;
      messages.push(parsed.value);
    },
  });
  await nc.flush();
  return { messages, sub };
}

describe("agent presence", () => {
  it("announces up, heartbeats, re-announces on sync and update, drains then goes down", async () => {
    const prefix = `p${process.pid}x${seq++}`;
    const { messages, sub } = await listen(prefix);
    const agent = await startAgent({
      servers: server.url,
      prefix,
      service: "echo",
      version: "2.0.0",
      zone: "z1",
      metadata: { team: "core" },
      heartbeatMs: 50,
      methods: { say: (p) => p },
    });
    await expect
      .poll(() => messages.filter((m) => m.kind === "hb").length)
      .toBeGreaterThanOrEqual(2);
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
    nc.publish(`${prefix}.presence.sync`);
    await expect.poll(ups).toBe(before + 1);

    await agent.update({ weight: 7, metadata: { team: "edge" } });
    await expect.poll(ups).toBe(before + 2);
    const last = messages.filter((m) => m.kind === "up").at(-1);
    expect(last?.kind === "up" && last.instance.weight).toBe(7);
    expect(agent.record.metadata).toEqual({ team: "edge" });
    await expect(agent.update({ weight: -1 })).rejects.toThrow(TypeError);

    await agent.stop();
    await nc.flush();
    const tail = messages.slice(-2);
    expect(tail[0]?.kind === "up" && tail[0].instance.status).toBe("draining");
    expect(tail[1]).toEqual({ kind: "down", service: "echo", id: agent.id, reason: "stopped" });
    const count = messages.length;
    await new Promise((r) => setTimeout(r, 150));
    expect(messages.length).toBe(count);
    sub.unsubscribe();
  });

  it("leaves nothing listening on a shared connection after stop()", async () => {
    const prefix = `p${process.pid}x${seq++}`;
    // nats.js keeps one listener per status() iterator; stopped agents must remove theirs.
    const listeners = () =>
      (nc as unknown as { protocol: { listeners: unknown[] } }).protocol.listeners.length;
    const before = listeners();
    for (let i = 0; i < 10; i++) {
      const a = await startAgent({ connection: nc, prefix, service: "s", methods: { m: () => 1 } });
      await a.stop();
    }
    await expect.poll(listeners).toBe(before);
  });

  it("gives every start a new instance id", async () => {
    const prefix = `p${process.pid}x${seq++}`;
    const a = await startAgent({
      servers: server.url,
      prefix,
      service: "s",
      methods: { m: () => 1 },
    });
    const b = await startAgent({ connection: nc, prefix, service: "s", methods: { m: () => 1 } });
    expect(a.id).not.toBe(b.id);
    await Promise.all([a.stop(), b.stop()]);
    expect(nc.isClosed()).toBe(false);
  });
});
