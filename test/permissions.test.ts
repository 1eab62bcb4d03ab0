import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import { type Agent, startAgent } from "@natsmesh/agent";
import {
  generateKeyPair,
  Header,
  isMeshError,
  issueToken,
  JWKS_KEY,
  type MeshKeyPair,
  PRESENCE_JWKS_KEY,
  presenceBucket,
  presenceKey,
  registryBucket,
} from "@natsmesh/protocol";
import { type Registry, startRegistry } from "@natsmesh/registry";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import { readPresence } from "@natsmesh/sdk/internal";
import { cleanup, setup, waitUntil } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AGENT_INBOX_PREFIXES,
  type PermissionedNats,
  PREFIX,
  provision,
  startPermissionedNats,
  violations,
} from "./nats-permissions.js";

// docker/nats/permissions.conf as shipped: registry, agent, caller and dashboard do their jobs
// under it (calls, presence, the key set from KV, durable events, stats), and a caller with an
// ordinary token cannot make an agent write where it should not. Each reply subject of the
// reply-subject attacks (docs/security.md) is refused twice over: the agent's reply guard drops the request,
// and an agent that answered anyway (a responder without the guard, as agents were before) is
// refused by the server. The last test runs the same responder without the file: the same
// requests purge and delete the presence bucket, so the file is what stops them.

let nats: PermissionedNats;
let keys: MeshKeyPair;
/** The registry's presence signing key: apart from the token keys, published by the registry. */
let presenceKeys: MeshKeyPair;
let admin: NatsConnection;
let callerNc: NatsConnection;
let registry: Registry;
let agent: Agent;
let mesh: Mesh;
let callerToken: string;
const handled: unknown[] = [];
/** Permission violations the server reported, by role. */
const refused: Record<string, string[]> = {};

beforeAll(async () => {
  keys = await generateKeyPair();
  presenceKeys = await generateKeyPair();
  nats = await startPermissionedNats();
  admin = await nats.connect("admin");
  await provision(admin, keys.jwks);
  const registryNc = await nats.connect("registry");
  refused.registry = violations(registryNc);
  registry = await startRegistry({
    connection: registryNc,
    prefix: PREFIX,
    auth: { jwks: "kv", signingKey: presenceKeys.privateJwk },
    heartbeatTimeoutMs: 1500,
  });
  const agentNc = await nats.connect("agent");
  refused.agent = violations(agentNc);
  agent = await startAgent({
    connection: agentNc,
    prefix: PREFIX,
    service: "billing",
    auth: { jwks: "kv" },
    token: await issueToken({ key: keys.privateJwk, sub: "billing", scope: "announce:billing" }),
    inboxPrefixes: [...AGENT_INBOX_PREFIXES],
    heartbeatMs: 500,
    methods: { charge: (p: unknown) => ({ charged: p }) },
    events: { "order.created": (p: unknown) => void handled.push(p) },
  });
  callerNc = await nats.connect("caller");
  refused.caller = violations(callerNc);
  callerToken = await issueToken({
    key: keys.privateJwk,
    sub: "checkout",
    scope: "billing.* emit:order.*",
  });
  // Only records the registry signed, with its key from the bucket.
  mesh = await connectMesh({
    connection: callerNc,
    prefix: PREFIX,
    token: callerToken,
    presence: { keys: "kv" },
  });
  const seen = await waitUntil(() => mesh.instances("billing").some((i) => i.id === agent.id), {
    timeoutMs: 10_000,
  });
  if (!seen) throw new Error("the caller never saw the agent in presence");
});
afterAll(() => cleanup(nats, registry, agent, mesh));

describe("under the shipped permissions, every role does its job", () => {
  it("calls by queue and by presence, with keys from KV, durable events, and stats", async () => {
    expect(await mesh.request("billing", "charge", 1)).toEqual({ charged: 1 });
    expect(await mesh.request("billing", "charge", 2, { balance: "weighted" })).toEqual({
      charged: 2,
    });
    // Auth is on, with the key set read from the registry bucket.
    await using anonymous = await connectMesh({ connection: callerNc, prefix: PREFIX });
    const refusedCall = await anonymous.request("billing", "charge", 3).catch((e: unknown) => e);
    expect(isMeshError(refusedCall) && refusedCall.code).toBe("UNAUTHENTICATED");
    await mesh.emit("order.created", { id: 7 });
    expect(await waitUntil(() => handled.length > 0, { timeoutMs: 10_000 })).toBe(true);
    expect(handled).toEqual([{ id: 7 }]);

    const dashboard = await nats.connect("dashboard");
    refused.dashboard = violations(dashboard);
    const h = natsHeaders();
    const statsToken = await issueToken({ key: keys.privateJwk, sub: "dash", scope: "stats:*" });
    h.set(Header.Authorization, `Bearer ${statsToken}`);
    const stats = await dashboard.request("$SRV.STATS.billing", "", { headers: h, timeout: 5000 });
    expect(stats.json<{ type: string; id: string }>()).toMatchObject({
      type: "io.nats.micro.v1.stats_response",
      id: agent.id,
    });
    // The dashboard checks records with the registry's published presence key too.
    await using view = await connectMesh({
      connection: dashboard,
      prefix: PREFIX,
      presence: { keys: "kv" },
    });
    await view.ready({ service: "billing", timeout: 10_000 });
    expect(view.instances("billing").map((i) => i.id)).toEqual([agent.id]);

    expect(registry.isLeader).toBe(true);
    expect(refused).toEqual({ registry: [], agent: [], caller: [], dashboard: [] });
  });
});

/** The reply subjects of the attacks in docs/security.md, for the instance `id`. */
function attacks(id: string): string[] {
  return [
    `$KV.${presenceBucket(PREFIX)}.${presenceKey("billing", id)}`,
    `$JS.API.STREAM.PURGE.KV_${presenceBucket(PREFIX)}`,
    `$JS.API.STREAM.DELETE.KV_${presenceBucket(PREFIX)}`,
    `$JS.API.STREAM.DELETE.KV_${registryBucket(PREFIX)}`,
  ];
}

/** A request as a caller with an ordinary `billing.*` token sends it, naming its own reply. */
function hostileRequest(subject: string, reply: string, payload: unknown): void {
  const h = natsHeaders();
  h.set(Header.Authorization, `Bearer ${callerToken}`);
  callerNc.publish(subject, JSON.stringify(payload), { reply, headers: h });
}

/** Presence, both buckets, the lease and the key set are as the mesh left them. */
async function expectIntact(): Promise<void> {
  const jsm = await jetstreamManager(admin);
  for (const bucket of [presenceBucket(PREFIX), registryBucket(PREFIX)]) {
    const info = await jsm.streams.info(`KV_${bucket}`);
    expect(info.state.messages, bucket).toBeGreaterThan(0);
  }
  const presence = await new Kvm(admin).open(presenceBucket(PREFIX));
  const entry = await presence.get(presenceKey("billing", agent.id));
  expect(entry?.operation).toBe("PUT");
  expect(entry?.json()).toMatchObject({ id: agent.id, subject: agent.record.subject });
  const reg = await new Kvm(admin).open(registryBucket(PREFIX));
  expect((await reg.get(JWKS_KEY))?.json()).toEqual(keys.jwks);
  const published = (await reg.get(PRESENCE_JWKS_KEY))?.json<{ keys: { kid: string }[] }>();
  expect(published?.keys.map((k) => k.kid)).toEqual([presenceKeys.kid]);
  expect((await reg.get("leader"))?.operation).toBe("PUT");
  expect(registry.isLeader).toBe(true);
  // A fresh client finds the instance and calls it with a token the key set still verifies.
  const fresh = await nats.connect("caller");
  const records = await readPresence(fresh, { prefix: PREFIX, service: "billing" });
  expect(records?.map((r) => r.id)).toEqual([agent.id]);
  await using m = await connectMesh({ connection: fresh, prefix: PREFIX, token: callerToken });
  expect(await m.request("billing", "charge", 9)).toEqual({ charged: 9 });
}

describe("a caller naming $KV and $JS subjects as reply subjects", () => {
  it("is dropped by the agent: counted, never answered, nothing published", async () => {
    const before = agent.stats().droppedReplies;
    const targets = [`${PREFIX}.svc.billing.charge`, `${agent.record.subject}.charge`];
    for (const reply of attacks(agent.id)) {
      for (const subject of targets) hostileRequest(subject, reply, { forged: true });
    }
    await callerNc.flush();
    const all = attacks(agent.id).length * targets.length;
    await waitUntil(() => agent.stats().droppedReplies - before >= all, { timeoutMs: 5000 });
    expect(agent.stats().droppedReplies - before).toBe(all);
    await agent.connection.flush();
    expect(refused.agent).toEqual([]);
    await expectIntact();
  });

  it("is refused by the server even to an agent that would answer: its user may not publish there", async () => {
    // What every agent did before it checked reply subjects: answer whatever the caller names,
    // here echoing the caller's payload (a forged record for the $KV subject). Same NATS user.
    const legacy = await nats.connect("agent");
    const denied = violations(legacy);
    let answered = 0;
    legacy.subscribe(`${PREFIX}.inst.billing.LEGACY.charge`, {
      callback: (_e, m) => {
        m.respond(m.data);
        answered++;
      },
    });
    await legacy.flush();
    const forged = { ...agent.record, weight: 10_000, subject: `${PREFIX}.inst.billing.LEGACY` };
    for (const reply of attacks(agent.id)) {
      hostileRequest(`${PREFIX}.inst.billing.LEGACY.charge`, reply, forged);
    }
    await callerNc.flush();
    const all = attacks(agent.id);
    await waitUntil(() => denied.length >= all.length, { timeoutMs: 5000 });
    expect(answered).toBe(all.length);
    expect([...denied].sort()).toEqual(all.map((s) => `publish ${s}`).sort());
    await expectIntact();
  });
});

describe("an agent told to answer more inboxes than its user may reach", () => {
  it("is refused by the server: a caller cannot make it write into the admin's inbox", async () => {
    // A misconfiguration the guard cannot catch: _INBOX_admin is a fine inbox prefix, just not
    // one of this agent's callers. The file decides where its user may publish, not the option.
    const nc = await nats.connect("agent");
    const denied = violations(nc);
    await using wide = await startAgent({
      connection: nc,
      prefix: PREFIX,
      service: "billing",
      auth: { jwks: "kv" },
      inboxPrefixes: [...AGENT_INBOX_PREFIXES, "_INBOX_admin"],
      methods: { charge: () => ({ ok: true }) },
    });
    const received: string[] = [];
    const sub = admin.subscribe("_INBOX_admin.>", {
      callback: (_e, m) => void received.push(m.subject),
    });
    await admin.flush();
    hostileRequest(`${wide.record.subject}.charge`, "_INBOX_admin.SPOOFED", {});
    await callerNc.flush();
    await waitUntil(() => denied.length > 0, { timeoutMs: 5000 });
    expect(denied).toEqual(["publish _INBOX_admin.SPOOFED"]);
    expect(wide.stats().droppedReplies).toBe(0);
    await admin.flush();
    sub.unsubscribe();
    expect(received).toEqual([]);
  });
});

describe("without the permission file", () => {
  it("the same unguarded responder lets a caller purge and delete the presence bucket", async () => {
    await using t = await setup({ tag: "noperm" });
    const bucket = presenceBucket(t.prefix);
    const kv = await new Kvm(t.nc).create(bucket, { history: 1 });
    await kv.put(presenceKey("billing", "REAL"), "{}");
    t.nc.subscribe(`${t.prefix}.inst.billing.LEGACY.charge`, {
      callback: (_e, m) => void m.respond(m.data),
    });
    await t.nc.flush();
    const jsm = await jetstreamManager(t.nc);
    t.nc.publish(`${t.prefix}.inst.billing.LEGACY.charge`, "{}", {
      reply: `$JS.API.STREAM.PURGE.KV_${bucket}`,
    });
    expect(
      await waitUntil(async () => (await jsm.streams.info(`KV_${bucket}`)).state.messages === 0, {
        timeoutMs: 5000,
      }),
    ).toBe(true);
    t.nc.publish(`${t.prefix}.inst.billing.LEGACY.charge`, "{}", {
      reply: `$JS.API.STREAM.DELETE.KV_${bucket}`,
    });
    expect(
      await waitUntil(
        async () => (await jsm.streams.names().next()).includes(`KV_${bucket}`) === false,
        { timeoutMs: 5000 },
      ),
    ).toBe(true);
  });
});
