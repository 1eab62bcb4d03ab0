import { createPresenceSigner, generateKeyPair } from "@natsmesh/protocol";
import { MAX_JWKS_BYTES } from "@natsmesh/protocol/internal";
import { describe, expect, it } from "vitest";
import { mergePresenceKey } from "../src/presence-key-publisher.js";

// What a signing leader stores under `presence-jwks`: its public key merged by kid with what
// is there, whatever a writer of the bucket left, and never larger than readers accept.

describe("mergePresenceKey", async () => {
  const a = createPresenceSigner((await generateKeyPair()).privateJwk).publicJwk;
  const b = createPresenceSigner((await generateKeyPair()).privateJwk).publicJwk;

  it("adds the key, replaces one of its kid, and writes nothing when it is there", () => {
    expect(a).not.toHaveProperty("d");
    expect(mergePresenceKey(undefined, a)).toEqual({ keys: [a] });
    expect(mergePresenceKey(JSON.stringify({ keys: [a] }), b)).toEqual({ keys: [a, b] });
    const stale = { ...a, x: b.x };
    expect(mergePresenceKey(JSON.stringify({ keys: [stale, b] }), a)).toEqual({ keys: [b, a] });
    expect(mergePresenceKey(JSON.stringify({ keys: [b, a] }), a)).toBeUndefined();
  });

  it("replaces a stored value that is no public key set", () => {
    for (const bad of ["{not json", '{"keys":1}', JSON.stringify({ keys: [{ ...b, d: "x" }] })]) {
      expect(mergePresenceKey(bad, a), bad).toEqual({ keys: [a] });
    }
    expect(mergePresenceKey("x".repeat(MAX_JWKS_BYTES + 1), a)).toEqual({ keys: [a] });
  });

  it("drops the oldest keys to stay within the size readers accept", () => {
    const many = Array.from({ length: 3000 }, (_, i) => ({ ...b, kid: `k${i}` }));
    const merged = mergePresenceKey(JSON.stringify({ keys: many }).slice(0, MAX_JWKS_BYTES), a);
    expect(merged).toEqual({ keys: [a] });
    // As many keys as fit: one more does not.
    let count = 0;
    while (JSON.stringify({ keys: many.slice(0, count + 1) }).length <= MAX_JWKS_BYTES) count++;
    const text = JSON.stringify({ keys: many.slice(0, count) });
    const next = mergePresenceKey(text, a);
    expect(Buffer.byteLength(JSON.stringify(next))).toBeLessThanOrEqual(MAX_JWKS_BYTES);
    expect(next?.keys.at(-1)).toEqual(a);
    expect(next?.keys[0]?.kid).not.toBe("k0");
    expect(next?.keys.at(-2)?.kid).toBe(`k${count - 1}`);
  });
});
