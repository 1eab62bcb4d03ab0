import { setTimeout as sleep } from "node:timers/promises";
import { type KV, Kvm } from "@nats-io/kv";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { type Agent, startAgent } from "@natsmesh/agent";
import {
  generateKeyPair,
  Header,
  issueToken,
  type MeshKeyPair,
  presenceBucket,
  presenceKey,
} from "@natsmesh/protocol";
import { type Registry, startRegistry } from "@natsmesh/registry";
import { cleanup, setup, type TestSetup, uniquePrefix, until } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { record } from "./helpers.js";

// Fast heartbeats, and a timeout long enough that a busy host never evicts a live agent: these
// tests are about who may change a record, not about eviction.
const HEARTBEAT_MS = 100;
const TIMEOUT_MS = 3000;

let t: TestSetup;
let keys: MeshKeyPair;

beforeAll(async () => {
  t = await setup();
  keys = await generateKeyPair();
});
afterAll(() => cleanup(t));

const tokenFor = (sub: string) =>
  issueToken({ key: keys.privateJwk, sub, scope: "announce:billing" });

interface Mesh {
  prefix: string;
  registry: Registry;
  kv: KV;
  agents: Agent[];
}

async function meshWith(auth: boolean): Promise<Mesh> {
  const prefix = uniquePrefix("bind");
  const registry = await startRegistry({
    connection: t.nc,
    prefix,
    heartbeatTimeoutMs: TIMEOUT_MS,
    ...(auth ? { auth: { jwks: keys.jwks, signingKey: keys.privateJwk } } : {}),
  });
  const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
  return { prefix, registry, kv, agents: [] };
}

async function agentIn(mesh: Mesh, token?: string): Promise<Agent> {
  const agent = await startAgent({
    connection: t.nc,
    prefix: mesh.prefix,
    service: "billing",
    heartbeatMs: HEARTBEAT_MS,
    ...(token === undefined ? {} : { token }),
    methods: { pay: () => 1 },
  });
  mesh.agents.push(agent);
  const key = presenceKey("billing", agent.id);
  await until(`${key} in the bucket`, async () => (await mesh.kv.get(key))?.operation === "PUT");
  return agent;
}

async function end(mesh: Mesh): Promise<void> {
  await cleanup(mesh.registry, ...mesh.agents);
}

/** Publishes a presence message for `victim`, as another process would: its own token, no secret. */
function forge(mesh: Mesh, victim: Agent, body: object, token?: string, secret?: string): void {
  const h = natsHeaders();
  if (token !== undefined) h.set(Header.Authorization, `Bearer ${token}`);
  const subject = `${mesh.prefix}.presence.billing.${victim.id}`;
  t.nc.publish(subject, JSON.stringify({ ...body, ...(secret ? { secret } : {}) }), {
    headers: h,
  });
}

const down = (victim: Agent) => ({
  kind: "down",
  service: "billing",
  id: victim.id,
  reason: "forged",
});
const hijack = (victim: Agent) => ({
  kind: "up",
  instance: { ...victim.record, weight: 10_000, metadata: { owner: "mallory" } },
});

/**
 * Sends forged `down`s (and a record rewrite) for `victim` every 50 ms for 1 s, then checks
 * that its key was never deleted or changed and the impostor messages were counted.
 */
async function attack(mesh: Mesh, victim: Agent, token?: string, secret?: string) {
  const key = presenceKey("billing", victim.id);
  const changes = await record(mesh.kv);
  const before = mesh.registry.stats.impostors;
  for (let i = 0; i < 20; i++) {
    forge(mesh, victim, down(victim), token, secret);
    if (i % 5 === 0) forge(mesh, victim, hijack(victim), token, secret);
    await sleep(50);
  }
  // Presence is applied in arrival order on one connection: a message sent after the forgeries
  // and seen by the registry means they were judged.
  await t.nc.flush();
  await until("24 impostors counted", () => mesh.registry.stats.impostors >= before + 24);
  changes.stop();
  expect(changes.events.filter((e) => e.key === key)).toEqual([]);
  expect((await mesh.kv.get(key))?.json()).toMatchObject({ weight: victim.record.weight });
  expect(mesh.registry.stats.impostors - before).toBe(24);
}

describe("an instance answers only to whoever announced it", () => {
  it("refuses down and record changes signed by a sibling's token of the same service", async () => {
    const mesh = await meshWith(true);
    try {
      const victim = await agentIn(mesh, await tokenFor("billing-1"));
      await agentIn(mesh, await tokenFor("billing-2"));
      await attack(mesh, victim, await tokenFor("billing-2"));
    } finally {
      await end(mesh);
    }
  });

  it("refuses them from a sibling sharing the very same token, without the instance's secret", async () => {
    const mesh = await meshWith(true);
    try {
      const shared = await tokenFor("billing");
      const victim = await agentIn(mesh, shared);
      await agentIn(mesh, shared);
      await attack(mesh, victim, shared);
      // A guessed secret is no better than none.
      await attack(mesh, victim, shared, "A".repeat(22));
    } finally {
      await end(mesh);
    }
  });

  it("refuses them without auth too: the presence secret binds the instance", async () => {
    const mesh = await meshWith(false);
    try {
      const victim = await agentIn(mesh);
      await attack(mesh, victim);
    } finally {
      await end(mesh);
    }
  });

  it("still takes the instance's own down at once", async () => {
    const mesh = await meshWith(true);
    try {
      const agent = await agentIn(mesh, await tokenFor("billing-1"));
      const key = presenceKey("billing", agent.id);
      await agent.stop();
      await until("the key deleted", async () => (await mesh.kv.get(key))?.operation === "DEL");
      // Deleted for its down, not evicted for silence.
      expect(mesh.registry.stats).toMatchObject({ evictions: 0, impostors: 0 });
      // The id stays bound after it went away: nobody else can announce it back.
      forge(mesh, agent, hijack(agent), await tokenFor("billing-2"));
      await until("the impostor counted", () => mesh.registry.stats.impostors === 1);
      expect((await mesh.kv.get(key))?.operation).toBe("DEL");
    } finally {
      await end(mesh);
    }
  });
});
