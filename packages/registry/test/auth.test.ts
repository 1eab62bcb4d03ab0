import { once } from "node:events";
import { connect as connectSocket } from "node:net";
import { type KV, Kvm } from "@nats-io/kv";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { type Agent, startAgent } from "@natsmesh/agent";
import {
  generateKeyPair,
  Header,
  type InstanceRecord,
  issueToken,
  type MeshKeyPair,
  presenceBucket,
  presenceKey,
} from "@natsmesh/protocol";
import { startRegistry } from "@natsmesh/registry";
import { connectMesh } from "@natsmesh/sdk";
import { cleanup, forgedRecord, setup, type TestSetup, uniquePrefix } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestSetup;
let keys: MeshKeyPair;

beforeAll(async () => {
  t = await setup();
  keys = await generateKeyPair();
});
afterAll(() => cleanup(t));

const announce = (scope: string) => issueToken({ key: keys.privateJwk, sub: "agent", scope });

function publish(
  prefix: string,
  record: InstanceRecord,
  token?: string,
  kind: "up" | "down" = "up",
): void {
  const h = natsHeaders();
  if (token !== undefined) h.set(Header.Authorization, `Bearer ${token}`);
  const body =
    kind === "up"
      ? { kind, instance: record }
      : { kind, service: record.service, id: record.id, reason: "forged" };
  t.nc.publish(`${prefix}.presence.${record.service}.${record.id}`, JSON.stringify(body), {
    headers: h,
  });
}

describe("signed presence", () => {
  it("writes only announcements whose token holds announce:<service> for that service", async () => {
    const prefix = uniquePrefix("auth");
    await using registry = await startRegistry({
      connection: t.nc,
      prefix,
      // SENTINEL below announces once and never beats: it must outlive the checks that read it,
      // however slowly a loaded host runs them (evicting it is not what this test is about).
      heartbeatTimeoutMs: 30_000,
      auth: { jwks: keys.jwks, signingKey: keys.privateJwk },
    });
    await using mesh = await connectMesh({ connection: t.nc, prefix });
    const kv: KV = await new Kvm(t.nc).open(presenceBucket(prefix));
    const agents: Agent[] = [];
    try {
      const good = await startAgent({
        connection: t.nc,
        prefix,
        service: "billing",
        heartbeatMs: 100,
        token: await announce("announce:billing"),
        methods: { pay: () => 1 },
      });
      const anonymous = await startAgent({
        connection: t.nc,
        prefix,
        service: "billing",
        heartbeatMs: 100,
        methods: { pay: () => 1 },
      });
      const wrongService = await startAgent({
        connection: t.nc,
        prefix,
        service: "billing",
        heartbeatMs: 100,
        token: await announce("announce:shipping billing.*"),
        methods: { pay: () => 1 },
      });
      agents.push(good, anonymous, wrongService);
      await expect
        .poll(async () => (await kv.get(presenceKey("billing", good.id)))?.operation)
        .toBe("PUT");

      // Forgeries: no token, a shipping token for billing, and a token signed by another key.
      const stranger = await generateKeyPair();
      publish(prefix, forgedRecord(prefix, "FORGED1"));
      publish(prefix, forgedRecord(prefix, "FORGED2"), await announce("announce:shipping"));
      publish(
        prefix,
        forgedRecord(prefix, "FORGED3"),
        await issueToken({ key: stranger.privateJwk, sub: "x", scope: "announce:*" }),
      );
      // A forged down must not evict the live instance either.
      publish(prefix, good.record, undefined, "down");
      // Presence is applied in arrival order: once a later valid announcement is in KV, every
      // forgery before it has been judged.
      const sentinel = forgedRecord(prefix, "SENTINEL");
      publish(prefix, sentinel, await announce("announce:billing"));
      await expect
        .poll(async () => (await kv.get(presenceKey("billing", "SENTINEL")))?.operation)
        .toBe("PUT");
      expect(registry.stats.unauthorized).toBeGreaterThanOrEqual(4);

      const keysNow: string[] = [];
      for await (const k of await kv.keys()) keysNow.push(k);
      expect(keysNow.sort()).toEqual(
        [presenceKey("billing", good.id), presenceKey("billing", "SENTINEL")].sort(),
      );
      await expect.poll(() => mesh.instances("billing").length).toBe(2);
      expect(
        mesh
          .instances("billing")
          .map((r) => r.id)
          .sort(),
      ).toEqual([good.id, "SENTINEL"].sort());
    } finally {
      for (const a of agents) await a.stop();
    }
  });

  it("takes a new key set from the registry bucket without a restart", async () => {
    const prefix = uniquePrefix("authk");
    await using registry = await startRegistry({
      connection: t.nc,
      prefix,
      heartbeatTimeoutMs: 600,
      auth: { jwks: "kv", signingKey: keys.privateJwk },
    });
    const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
    const jwksKv = await new Kvm(t.nc).create(`${prefix}_registry`);
    const record = forgedRecord(prefix, "SIGNED1");
    const signed = await announce("announce:billing");
    publish(prefix, record, signed);
    await expect.poll(() => registry.stats.unauthorized).toBe(1);
    await jwksKv.put("jwks", JSON.stringify(keys.jwks));
    // The registry watches the key set: soon one of the next announcements is written (within
    // the default poll timeout, not a tight bound a loaded host can miss).
    await expect
      .poll(
        async () => {
          publish(prefix, record, signed);
          return (await kv.get(presenceKey("billing", "SIGNED1")))?.operation;
        },
        { interval: 100 },
      )
      .toBe("PUT");
  });

  it("survives a presence message with a malformed header block and keeps listening", async () => {
    const prefix = uniquePrefix("authh");
    await using registry = await startRegistry({
      connection: t.nc,
      prefix,
      auth: { jwks: keys.jwks, signingKey: keys.privateJwk },
    });
    const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
    // nats.js refuses to send a header name with a space, so this goes over a raw socket.
    const record = forgedRecord(prefix, "RAW1");
    const header = "NATS/1.0\r\nBad Name: x\r\nAuthorization: Bearer \u00ff\r\n\r\n";
    const body = JSON.stringify({ kind: "up", instance: record });
    const hlen = Buffer.byteLength(header, "latin1");
    const total = hlen + Buffer.byteLength(body);
    const socket = connectSocket(t.server.port, "127.0.0.1");
    await once(socket, "connect");
    socket.write('CONNECT {"verbose":false,"headers":true}\r\n');
    socket.write(
      Buffer.concat([
        Buffer.from(`HPUB ${prefix}.presence.billing.RAW1 ${hlen} ${total}\r\n${header}`, "latin1"),
        Buffer.from(`${body}\r\nPING\r\n`),
      ]),
    );
    await expect.poll(() => registry.stats.unauthorized).toBe(1);
    socket.destroy();
    // Still reading: a signed announcement afterwards is written.
    publish(prefix, forgedRecord(prefix, "AFTER"), await announce("announce:billing"));
    await expect
      .poll(async () => (await kv.get(presenceKey("billing", "AFTER")))?.operation)
      .toBe("PUT");
  });

  it("reports unauthorized messages in /metrics", async () => {
    const prefix = uniquePrefix("authm");
    await using registry = await startRegistry({
      connection: t.nc,
      prefix,
      auth: { jwks: keys.jwks, signingKey: keys.privateJwk },
      http: { port: 0 },
    });
    publish(prefix, forgedRecord(prefix, "FORGED9"));
    await expect.poll(() => registry.stats.unauthorized).toBe(1);
    const text = await (await fetch(`http://127.0.0.1:${registry.httpPort}/metrics`)).text();
    expect(text).toMatch(/^natsmesh_registry_unauthorized_messages_total 1$/m);
  });
});
