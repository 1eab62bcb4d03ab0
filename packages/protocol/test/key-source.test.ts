import { Kvm } from "@nats-io/kv";
import { generateKeyPair, type JsonWebKeySet, JWKS_KEY, registryBucket } from "@natsmesh/protocol";
import { MAX_JWKS_BYTES, startKeySource } from "@natsmesh/protocol/internal";
import { cleanup, setup, type TestSetup, uniquePrefix, waitUntil } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestSetup;
beforeAll(async () => {
  t = await setup();
});
afterAll(() => cleanup(t));

describe('a "kv" key source', () => {
  it("refuses a key set larger than MAX_JWKS_BYTES before parsing it, and keeps the old keys", async () => {
    const prefix = uniquePrefix("jwks");
    const pair = await generateKeyPair();
    const sets: JsonWebKeySet[] = [];
    const errors: unknown[] = [];
    // A key source reads the bucket; the registry (or `natsmesh keys publish`) creates it.
    const kv = await new Kvm(t.nc).create(registryBucket(prefix), { history: 1 });
    const source = await startKeySource({
      source: "kv",
      connection: t.nc,
      prefix,
      onKeys: (jwks) => sets.push(jwks),
      onError: (err) => errors.push(err),
    });
    try {
      await kv.put(JWKS_KEY, JSON.stringify(pair.jwks));
      expect(await waitUntil(() => sets.length === 2, { timeoutMs: 10_000 })).toBe(true);
      // Valid JSON of a key set, padded past the bound: whoever can write the bucket picks the size.
      const padded = { keys: [{ ...pair.publicJwk, pad: "x".repeat(MAX_JWKS_BYTES) }] };
      await kv.put(JWKS_KEY, JSON.stringify(padded));
      expect(await waitUntil(() => errors.length === 1, { timeoutMs: 10_000 })).toBe(true);
      expect(errors[0]).toBeInstanceOf(TypeError);
      expect(sets).toEqual([{ keys: [] }, pair.jwks]);
    } finally {
      source.stop();
    }
  });
});
