import { Kvm } from "@nats-io/kv";
import { startAgent } from "@natsmesh/agent";
import {
  generateKeyPair,
  isMeshError,
  issueToken,
  type JsonWebKeySet,
  JWKS_KEY,
  type MeshKeyPair,
  PRESENCE_JWKS_KEY,
  presenceBucket,
  presenceKey,
  registryBucket,
} from "@natsmesh/protocol";
import { startRegistry } from "@natsmesh/registry";
import { connectMesh } from "@natsmesh/sdk";
import {
  cleanup,
  forgedRecord,
  setup,
  type TestSetup,
  uniquePrefix,
  waitUntil,
} from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// presence.keys "kv" reads the registries' presence keys from their own key, `presence-jwks`,
// never from the token key set `jwks`: a presence signing key there would verify tokens, so a
// registry's key could mint any token. The signing leader publishes its public half itself.

let t: TestSetup;
let tokenKeys: MeshKeyPair;
let presenceKeys: MeshKeyPair;

beforeAll(async () => {
  t = await setup({ tag: "pkv" });
  tokenKeys = await generateKeyPair();
  presenceKeys = await generateKeyPair();
});
afterAll(() => cleanup(t));

async function stored(prefix: string, key: string): Promise<JsonWebKeySet | undefined> {
  const kv = await new Kvm(t.nc).open(registryBucket(prefix));
  const entry = await kv.get(key);
  return entry?.operation === "PUT" ? entry.json<JsonWebKeySet>() : undefined;
}

describe('presence.keys "kv"', () => {
  it("takes what a signing registry publishes, never the token key set", async () => {
    const prefix = uniquePrefix("pkv");
    const registry = await startRegistry({
      servers: t.server.url,
      prefix,
      auth: { jwks: tokenKeys.jwks, signingKey: presenceKeys.privateJwk },
    });
    // The operator's token key set, as `natsmesh keys publish` puts it.
    const registryKv = await new Kvm(t.nc).open(registryBucket(prefix));
    await registryKv.put(JWKS_KEY, JSON.stringify(tokenKeys.jwks));
    const agent = await startAgent({
      servers: t.server.url,
      prefix,
      service: "billing",
      auth: { jwks: "kv" },
      token: await issueToken({ key: tokenKeys.privateJwk, sub: "b", scope: "announce:billing" }),
      methods: { pay: () => "paid" },
    });
    const token = await issueToken({ key: tokenKeys.privateJwk, sub: "c", scope: "billing.*" });
    await using mesh = await connectMesh({
      servers: t.server.url,
      prefix,
      token,
      presence: { keys: "kv" },
    });
    try {
      // The signed record is taken: the SDK found the registry's key.
      await mesh.ready({ service: "billing", timeout: 10_000 });
      expect(mesh.instances("billing").map((r) => r.id)).toEqual([agent.id]);
      expect(await mesh.request("billing", "pay", {}, { balance: "weighted" })).toBe("paid");

      // The token key set is the operator's alone; the presence key is public only.
      expect(await stored(prefix, JWKS_KEY)).toEqual(tokenKeys.jwks);
      const published = await stored(prefix, PRESENCE_JWKS_KEY);
      expect(published?.keys.map((k) => k.kid)).toEqual([presenceKeys.kid]);
      expect(published?.keys[0]).not.toHaveProperty("d");

      // A token signed by the registry's presence key opens nothing.
      const minted = await issueToken({ key: presenceKeys.privateJwk, sub: "x", scope: "*" });
      await using forger = await connectMesh({ servers: t.server.url, prefix, token: minted });
      const refused = await forger.request("billing", "pay", {}).catch((e: unknown) => e);
      expect(isMeshError(refused) && refused.code).toBe("UNAUTHENTICATED");

      // A forged unsigned record is left out (no registry left to repair the bucket).
      await registry.stop();
      const presence = await new Kvm(t.nc).open(presenceBucket(prefix));
      await presence.put(
        presenceKey("billing", "FAKE1"),
        JSON.stringify(forgedRecord(prefix, "FAKE1")),
      );
      expect(await waitUntil(() => mesh.presenceStats().unsigned >= 1, { timeoutMs: 10_000 })).toBe(
        true,
      );
      expect(mesh.instances("billing").map((r) => r.id)).toEqual([agent.id]);
    } finally {
      await agent.stop();
      await registry.stop();
    }
  });

  it("keeps the keys of earlier leaders: a rotation, or registries with different keys", async () => {
    const prefix = uniquePrefix("pkv");
    const next = await generateKeyPair();
    for (const key of [presenceKeys, next, presenceKeys]) {
      const registry = await startRegistry({
        servers: t.server.url,
        prefix,
        auth: { jwks: tokenKeys.jwks, signingKey: key.privateJwk },
      });
      try {
        const has = await waitUntil(
          async () =>
            (await stored(prefix, PRESENCE_JWKS_KEY))?.keys.some(
              (k) => k.kid === key.kid && k.x === key.publicJwk.x,
            ) === true,
          { timeoutMs: 10_000 },
        );
        expect(has).toBe(true);
      } finally {
        await registry.stop();
      }
    }
    const published = await stored(prefix, PRESENCE_JWKS_KEY);
    expect(published?.keys.map((k) => k.kid).sort()).toEqual([presenceKeys.kid, next.kid].sort());
    expect(await stored(prefix, JWKS_KEY)).toBeUndefined();
  });

  it("gets nothing from a registry with unsignedPresence", async () => {
    const prefix = uniquePrefix("pkv");
    const registry = await startRegistry({
      servers: t.server.url,
      prefix,
      auth: { jwks: tokenKeys.jwks, unsignedPresence: true },
    });
    try {
      expect(registry.isLeader).toBe(true);
      expect(await stored(prefix, PRESENCE_JWKS_KEY)).toBeUndefined();
    } finally {
      await registry.stop();
    }
  });
});
