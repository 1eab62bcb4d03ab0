import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { type Agent, startAgent } from "@natsmesh/agent";
import {
  deadLetterStream,
  generateKeyPair,
  isMeshError,
  issueToken,
  JWKS_KEY,
  type MeshKeyPair,
  registryBucket,
} from "@natsmesh/protocol";
import { type Registry, startRegistry } from "@natsmesh/registry";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import { readPresence } from "@natsmesh/sdk/internal";
import { cleanup, waitUntil } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AGENT_INBOX_PREFIXES,
  type PermissionedNats,
  PREFIX,
  provision,
  publishKeys,
  startPermissionedNats,
} from "./nats-permissions.js";

// An agent whose key set cannot load must not start and then refuse every token in silence.
// Cannot ever load as configured (no right to read it, no such file, not a key set): startAgent
// rejects, saying what is wrong. Not there yet (no key published, bucket missing): the agent
// starts "unready" in presence, logs it at error level, answers UNAVAILABLE (the caller's token
// is not at fault), leaves durable events in the stream, and serves once the keys arrive.
// The NATS side is the shipped permission file, so "may not read it" is a real refusal.

let keys: MeshKeyPair;
const methods = { charge: (p: unknown) => ({ charged: p }) };

beforeAll(async () => {
  keys = await generateKeyPair();
});

async function failure(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return { code: isMeshError(err) ? err.code : undefined, message: String(err) };
  }
  throw new Error("it did not fail");
}

describe("a key set that cannot ever load", () => {
  let nats: PermissionedNats;
  beforeAll(async () => {
    nats = await startPermissionedNats();
    await provision(await nats.connect("admin"), keys.jwks);
  });
  afterAll(() => nats?.dispose());

  it('refuses to start when its NATS user may not read the "kv" key set, naming what was refused', async () => {
    // A caller's credentials used for an agent: the file grants them no look at the key set.
    const nc = await nats.connect("caller");
    const registryNc = await nats.connect("registry");
    const announced: string[] = [];
    registryNc.subscribe(`${PREFIX}.presence.*.*`, {
      callback: (_e, m) => void announced.push(m.subject),
    });
    await registryNc.flush();
    const err = await failure(
      startAgent({
        connection: nc,
        prefix: PREFIX,
        service: "billing",
        auth: { jwks: "kv" },
        methods,
      }),
    );
    expect(err.code).toBe("FORBIDDEN");
    // The caller may look at the bucket (for the presence keys) but follow only presence-jwks.
    expect(err.message).toContain("$JS.API.CONSUMER.CREATE.KV_mesh_registry.");
    expect(err.message).toContain(`the "${JWKS_KEY}" key`);
    // Nothing was announced, and the connection it was given is still the caller's to use.
    await nc.flush();
    await registryNc.flush();
    expect(announced).toEqual([]);
    expect(nc.isClosed()).toBe(false);
  });

  it("refuses to start with a JWKS file that is missing, not JSON, or not a public key set", async () => {
    const nc = await nats.connect("agent");
    const dir = mkdtempSync(join(tmpdir(), "natsmesh-jwks-"));
    try {
      const garbage = join(dir, "garbage.json");
      writeFileSync(garbage, "{ nope");
      const secret = join(dir, "private.json");
      writeFileSync(secret, JSON.stringify({ keys: [keys.privateJwk] }));
      for (const [file, why] of [
        [join(dir, "missing.json"), /cannot read the JWKS file/],
        [garbage, /is not JSON/],
        [secret, /private/],
      ] as const) {
        const start = startAgent({
          connection: nc,
          prefix: PREFIX,
          service: "billing",
          auth: { jwks: file },
          methods,
        });
        await expect(start).rejects.toThrow(TypeError);
        await expect(start).rejects.toThrow(why);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a key set that is not there yet", () => {
  let nats: PermissionedNats;
  let admin: NatsConnection;
  let callerNc: NatsConnection;
  let registry: Registry;
  let agent: Agent;
  let mesh: Mesh;
  const logs: { level: number; msg: string }[] = [];
  const handled: unknown[] = [];

  beforeAll(async () => {
    nats = await startPermissionedNats();
    admin = await nats.connect("admin");
    await provision(admin); // the streams, but no key set published
    // The registry checks announcements against its own copy of the keys, so the agent's
    // record reaches the bucket while the agent itself has none.
    registry = await startRegistry({
      connection: await nats.connect("registry"),
      prefix: PREFIX,
      auth: { jwks: keys.jwks, signingKey: keys.privateJwk },
      heartbeatTimeoutMs: 1500,
    });
    const { pino } = await import("pino");
    agent = await startAgent({
      connection: await nats.connect("agent"),
      prefix: PREFIX,
      service: "billing",
      auth: { jwks: "kv" },
      token: await issueToken({ key: keys.privateJwk, sub: "billing", scope: "announce:billing" }),
      inboxPrefixes: [...AGENT_INBOX_PREFIXES],
      heartbeatMs: 250,
      methods,
      events: { "order.created": (p: unknown) => void handled.push(p) },
      logger: pino(
        { level: "info" },
        { write: (line: string) => void logs.push(JSON.parse(line)) },
      ),
    });
    callerNc = await nats.connect("caller");
    mesh = await connectMesh({
      connection: callerNc,
      prefix: PREFIX,
      token: await issueToken({
        key: keys.privateJwk,
        sub: "checkout",
        scope: "billing.* emit:order.*",
      }),
      timeoutMs: 3000,
    });
  });
  afterAll(() => cleanup(nats, registry, agent, mesh));

  async function presenceStatus(): Promise<string | undefined> {
    const records = await readPresence(callerNc, {
      prefix: PREFIX,
      service: "billing",
    });
    return records?.find((r) => r.id === agent.id)?.status;
  }

  it("starts unready, says so at error level and in presence, and answers UNAVAILABLE", async () => {
    expect(agent.record.status).toBe("unready");
    expect(logs.some((l) => l.level === 50 && l.msg.includes("started without a key set"))).toBe(
      true,
    );
    await expect.poll(presenceStatus, { timeout: 5000 }).toBe("unready");
    // Not UNAUTHENTICATED: the caller's token is fine, this instance cannot check it.
    expect((await failure(mesh.request("billing", "charge", 1))).code).toBe("UNAVAILABLE");
    // A durable event stays in the stream: nothing pulls it to refuse it.
    await mesh.emit("order.created", { id: 7 });
  });

  it("serves once the key set is published, and handles the event it held back, not dead-lettered", async () => {
    await publishKeys(admin, keys.jwks);
    await expect.poll(() => agent.record.status, { timeout: 5000 }).toBe("ready");
    await expect.poll(presenceStatus, { timeout: 5000 }).toBe("ready");
    expect(await mesh.request("billing", "charge", 2)).toEqual({ charged: 2 });
    expect(await waitUntil(() => handled.length > 0, { timeoutMs: 5000 })).toBe(true);
    expect(handled).toEqual([{ id: 7 }]);
    const dlq = await (await jetstreamManager(admin)).streams.info(deadLetterStream(PREFIX));
    expect(dlq.state.messages).toBe(0);
  });

  it("is unready again, loudly, when the key set is deleted", async () => {
    const kv = await new Kvm(admin).open(registryBucket(PREFIX));
    await kv.delete(JWKS_KEY);
    await expect.poll(() => agent.record.status, { timeout: 5000 }).toBe("unready");
    expect(logs.some((l) => l.level === 50 && l.msg.includes("the key set is now empty"))).toBe(
      true,
    );
    expect((await failure(mesh.request("billing", "charge", 3))).code).toBe("UNAVAILABLE");
  });
});
