import { Kvm } from "@nats-io/kv";
import { startAgent } from "@natsmesh/agent";
import {
  generateKeyPair,
  issueToken,
  type MeshKeyPair,
  PresenceKeys,
  parsePresenceEntry,
  presenceBucket,
  presenceKey,
} from "@natsmesh/protocol";
import { type RegistryOptions, startRegistry } from "@natsmesh/registry";
import { cleanup, setup, type TestSetup, uniquePrefix, waitUntil } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestSetup;
let keys: MeshKeyPair;

beforeAll(async () => {
  t = await setup();
  keys = await generateKeyPair();
});
afterAll(() => cleanup(t));

/** The stored value of one agent's key, once a registry started with `auth` wrote it. */
async function storedRecord(
  auth: RegistryOptions["auth"],
): Promise<{ prefix: string; key: string; value: Uint8Array }> {
  const prefix = uniquePrefix("sign");
  const registry = await startRegistry({ servers: t.server.url, prefix, auth });
  const token = await issueToken({ key: keys.privateJwk, sub: "a", scope: "announce:echo" });
  const agent = await startAgent({
    servers: t.server.url,
    prefix,
    service: "echo",
    token,
    methods: { say: (p: unknown) => p },
  });
  try {
    const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
    const key = presenceKey("echo", agent.id);
    let value: Uint8Array | undefined;
    await waitUntil(
      async () => {
        const e = await kv.get(key);
        value = e?.operation === "PUT" ? e.value : undefined;
        return value !== undefined;
      },
      { timeoutMs: 10_000 },
    );
    expect(value).toBeDefined();
    return { prefix, key, value: value! };
  } finally {
    await cleanup(agent, registry);
  }
}

describe("signed presence records", () => {
  it("with a signing key, the leader writes records that verify against the key set", async () => {
    const { prefix, key, value } = await storedRecord({
      jwks: keys.jwks,
      signingKey: keys.privateJwk,
    });
    const checked = parsePresenceEntry(key, value, prefix, {
      keys: new PresenceKeys(keys.jwks),
    });
    expect(checked.ok).toBe(true);
  });

  it("takes the key as inline JSON too; with unsignedPresence, records are unsigned", async () => {
    const inline = JSON.stringify(keys.privateJwk);
    const signed = await storedRecord({ jwks: keys.jwks, signingKey: inline });
    expect(JSON.parse(new TextDecoder().decode(signed.value)).sig.kid).toBe(keys.kid);
    const plain = await storedRecord({ jwks: keys.jwks, unsignedPresence: true });
    expect(JSON.parse(new TextDecoder().decode(plain.value)).sig).toBeUndefined();
  });

  it("refuses a signing key that cannot sign records, before connecting", async () => {
    const es = await generateKeyPair({ alg: "ES256" });
    for (const signingKey of [
      es.privateJwk,
      keys.publicJwk,
      "{not json",
      "/nonexistent/key.json",
    ]) {
      await expect(
        startRegistry({ servers: "nats://127.0.0.1:1", auth: { jwks: keys.jwks, signingKey } }),
      ).rejects.toBeInstanceOf(TypeError);
    }
  });
});
