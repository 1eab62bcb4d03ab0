import { type KV, Kvm } from "@nats-io/kv";
import { type Agent, startAgent } from "@natsmesh/agent";
import {
  createPresenceSigner,
  generateKeyPair,
  issueToken,
  type MeshKeyPair,
  presenceBucket,
  presenceKey,
} from "@natsmesh/protocol";
import { startRegistry } from "@natsmesh/registry";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import {
  cleanup,
  forgedRecord,
  setup,
  type TestSetup,
  uniquePrefix,
  waitUntil,
} from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Unchecked, a well-formed record written straight into <P>_presence took 594 of 599
// weighted calls. With the registries' keys, the SDK takes only records a registry signed.

const CALLS = 300;
let t: TestSetup;
let keys: MeshKeyPair;
let attacker: MeshKeyPair;

beforeAll(async () => {
  t = await setup({ tag: "forgery" });
  keys = await generateKeyPair();
  attacker = await generateKeyPair();
});
afterAll(() => cleanup(t));

interface Scene {
  prefix: string;
  agent: Agent;
  kv: KV;
  /** Calls that reached the attacker's subscription. */
  stolen: () => number;
  mesh: Mesh;
  callerToken: string;
}

/**
 * A signed record of a real agent in the bucket, no registry left to repair anything (the
 * SDK's own check is what is tested), and an attacker listening on the subject of its fakes.
 */
async function scene(): Promise<Scene> {
  const prefix = uniquePrefix("forge");
  const registry = await startRegistry({
    servers: t.server.url,
    prefix,
    auth: { jwks: keys.jwks, signingKey: keys.privateJwk },
  });
  const token = await issueToken({
    key: keys.privateJwk,
    sub: "billing",
    scope: "announce:billing",
  });
  const agent = await startAgent({
    servers: t.server.url,
    prefix,
    service: "billing",
    auth: { jwks: keys.jwks },
    token,
    methods: { pay: () => "real" },
  });
  const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
  const live = await waitUntil(
    async () => (await kv.get(presenceKey("billing", agent.id)))?.operation === "PUT",
    {
      timeoutMs: 10_000,
    },
  );
  expect(live).toBe(true);
  await registry.stop();
  let stolen = 0;
  t.nc.subscribe(`${prefix}.inst.billing.*.pay`, {
    callback: (_err, msg) => {
      if (msg.subject.includes(".FAKE")) {
        stolen++;
        msg.respond(new TextEncoder().encode('"stolen"'));
      }
    },
  });
  const callerToken = await issueToken({ key: keys.privateJwk, sub: "caller", scope: "billing.*" });
  const mesh = await connectMesh({
    servers: t.server.url,
    prefix,
    token: callerToken,
    presence: { keys: keys.jwks },
  });
  // The view holds the real, signed record before anyone tampers with the bucket.
  const seen = await waitUntil(() => mesh.instances("billing").length === 1, { timeoutMs: 10_000 });
  expect(seen).toBe(true);
  return { prefix, agent, kv, stolen: () => stolen, mesh, callerToken };
}

async function weightedCalls(mesh: Mesh): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < CALLS; i++) {
    const r = String(
      await mesh.request("billing", "pay", {}, { balance: "weighted", codec: "json" }),
    );
    out[r] = (out[r] ?? 0) + 1;
  }
  return out;
}

describe("forged presence records, with the registries' keys in the SDK", () => {
  it("take no calls: unsigned, signed by another key, or a real signature on another record", async () => {
    const s = await scene();
    try {
      const real = JSON.parse(
        new TextDecoder().decode((await s.kv.get(presenceKey("billing", s.agent.id)))!.value),
      );
      expect(real.sig?.kid).toBe(keys.kid);
      await s.kv.put("billing.FAKE1", JSON.stringify(forgedRecord(s.prefix, "FAKE1")));
      const forger = createPresenceSigner(attacker.privateJwk);
      await s.kv.put(
        "billing.FAKE2",
        forger.signedValue("billing.FAKE2", forgedRecord(s.prefix, "FAKE2")),
      );
      // The real record's signature, pasted onto a fake.
      await s.kv.put(
        "billing.FAKE3",
        JSON.stringify({ ...forgedRecord(s.prefix, "FAKE3"), sig: real.sig }),
      );
      // The real record, its weight raised and its subject pointed elsewhere, keeps its signature.
      await s.kv.put(
        presenceKey("billing", s.agent.id),
        JSON.stringify({ ...real, weight: 10_000, host: "evil" }),
      );
      expect(
        await waitUntil(
          () => s.mesh.presenceStats().unsigned + s.mesh.presenceStats().badSignature >= 4,
          {
            timeoutMs: 10_000,
          },
        ),
      ).toBe(true);
      const results = await weightedCalls(s.mesh);
      console.info(
        `[forgery] ${CALLS} weighted calls: ${JSON.stringify(results)}, stolen ${s.stolen()}`,
      );
      expect(results).toEqual({ real: CALLS });
      expect(s.stolen()).toBe(0);
      expect(s.mesh.instances("billing").map((r) => r.id)).toEqual([s.agent.id]);
      expect(s.mesh.presenceStats()).toMatchObject({ instances: 1, unsigned: 1, badSignature: 3 });
    } finally {
      await cleanup(s.mesh, s.agent);
    }
  });

  it("without keys the SDK takes them, as before: the check is what stops them", async () => {
    const s = await scene();
    const unchecked = await connectMesh({
      servers: t.server.url,
      prefix: s.prefix,
      token: s.callerToken,
    });
    try {
      await s.kv.put("billing.FAKE1", JSON.stringify(forgedRecord(s.prefix, "FAKE1")));
      expect(
        await waitUntil(() => unchecked.instances("billing").length === 2, { timeoutMs: 10_000 }),
      ).toBe(true);
      expect(s.mesh.instances("billing").length).toBe(1);
      const results = await weightedCalls(unchecked);
      console.info(`[forgery] unchecked SDK, ${CALLS} weighted calls: ${JSON.stringify(results)}`);
      expect(s.stolen()).toBeGreaterThan(CALLS / 2);
    } finally {
      await cleanup(unchecked, s.mesh, s.agent);
    }
  });
});
