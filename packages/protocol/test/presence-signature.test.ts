import {
  canonicalRecord,
  createPresenceSigner,
  generateKeyPair,
  type InstanceRecord,
  type MeshError,
  PresenceKeys,
  parsePresenceEntry,
  SignatureProblem,
} from "@natsmesh/protocol";
import { describe, expect, it } from "vitest";

function record(over: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    ...{ v: 1, id: "A1", service: "echo", version: "1.0.0", weight: 100, status: "ready" },
    ...{ methods: ["say"], subject: "mesh.inst.echo.A1", host: "h", pid: 1 },
    ...{ metadata: { b: "2", a: "1" }, startedAt: 1 },
    ...over,
  };
}

const bytes = (text: string) => new TextEncoder().encode(text);

function reasonOf(result: ReturnType<typeof parsePresenceEntry>): unknown {
  if (result.ok) return "accepted";
  const err: MeshError = result.error;
  return `${err.code} ${(err.data as { reason?: string } | undefined)?.reason}`;
}

describe("presence signatures", async () => {
  const pair = await generateKeyPair();
  const other = await generateKeyPair();
  const signer = createPresenceSigner(pair.privateJwk);
  const keys = new PresenceKeys(pair.jwks);

  it("a record the registry signed verifies, and reads back as the record", () => {
    const value = signer.signedValue("echo.A1", record());
    const parsed = parsePresenceEntry("echo.A1", bytes(value), "mesh", { keys });
    expect(parsed).toEqual({ ok: true, value: record() });
    // Readers that check nothing see the same record: `sig` is an addition.
    expect(parsePresenceEntry("echo.A1", bytes(value))).toEqual(parsed);
    expect(value.startsWith(canonicalRecord(record()).slice(0, -1))).toBe(true);
  });

  it("signs the content, not the byte order of its metadata, and deterministically", () => {
    const value = signer.signedValue("echo.A1", record({ metadata: { a: "1", b: "2" } }));
    expect(signer.signedValue("echo.A1", record())).toBe(value);
  });

  it("refuses unsigned, altered, re-keyed, foreign-signed and malformed records", () => {
    const good = JSON.parse(signer.signedValue("echo.A1", record()));
    const entry = (v: unknown, key = "echo.A1") =>
      parsePresenceEntry(key, bytes(JSON.stringify(v)), "mesh", { keys });
    const unsigned = `UNAUTHENTICATED ${SignatureProblem.unsigned}`;
    const invalid = `UNAUTHENTICATED ${SignatureProblem.invalid}`;
    expect(reasonOf(entry(record()))).toBe(unsigned);
    expect(reasonOf(entry({ ...good, weight: 10_000 }))).toBe(invalid);
    expect(reasonOf(entry({ ...good, metadata: { a: "1", b: "3" } }))).toBe(invalid);
    // The signature of A1's record does not make it B2's.
    const moved = { ...good, id: "B2", subject: "mesh.inst.echo.B2" };
    expect(reasonOf(entry(moved, "echo.B2"))).toBe(invalid);
    const forged = JSON.parse(
      createPresenceSigner(other.privateJwk).signedValue("echo.A1", record()),
    );
    expect(reasonOf(entry(forged))).toBe(invalid);
    expect(reasonOf(entry({ ...forged, sig: { ...forged.sig, kid: pair.kid } }))).toBe(invalid);
    for (const sig of [null, "x", 7, { ...good.sig, alg: "none" }, { ...good.sig, value: "AA" }]) {
      expect(reasonOf(entry({ ...good, sig }))).toBe(invalid);
    }
    // Invalid records stay BAD_REQUEST, checked before any signature.
    expect(reasonOf(entry({ ...good, v: 2 }))).toBe("BAD_REQUEST undefined");
  });

  it("follows key rotation: a key removed from the set verifies nothing", () => {
    const rotating = new PresenceKeys({ keys: [pair.publicJwk, other.publicJwk] });
    const value = bytes(signer.signedValue("echo.A1", record()));
    expect(parsePresenceEntry("echo.A1", value, "mesh", { keys: rotating }).ok).toBe(true);
    rotating.setJwks(other.jwks);
    expect(reasonOf(parsePresenceEntry("echo.A1", value, "mesh", { keys: rotating }))).toBe(
      `UNAUTHENTICATED ${SignatureProblem.invalid}`,
    );
  });

  it("refuses a size over the reader's quota before decoding", () => {
    const value = bytes(signer.signedValue("echo.A1", record()));
    const small = parsePresenceEntry("echo.A1", value, "mesh", { maxBytes: value.length - 1 });
    expect(reasonOf(small)).toBe("BAD_REQUEST too-large");
    expect(parsePresenceEntry("echo.A1", value, "mesh", { maxBytes: value.length }).ok).toBe(true);
  });

  it("signs only with a private Ed25519 JWK that has a kid", async () => {
    const es = await generateKeyPair({ alg: "ES256" });
    expect(() => createPresenceSigner(es.privateJwk)).toThrow(TypeError);
    expect(() => createPresenceSigner(pair.publicJwk)).toThrow(TypeError);
    expect(() => createPresenceSigner({ ...pair.privateJwk, kid: undefined })).toThrow(TypeError);
    // Key sets may hold token keys of other algorithms: they verify no records.
    expect(new PresenceKeys({ keys: [es.publicJwk, pair.publicJwk] }).size).toBe(1);
  });
});
