import { createHash, createPrivateKey, sign } from "node:crypto";
import {
  createVerifier,
  generateKeyPair,
  issueToken,
  type KeyAlgorithm,
  MeshError,
  type MeshKeyPair,
  type TokenVerifier,
} from "@natsmesh/protocol";
import {
  authFromEnv,
  bearerToken,
  maxTokenLifetimeFromEnv,
  TOKEN_REF_LENGTH,
  tokenRef,
} from "@natsmesh/protocol/internal";
import { SignJWT } from "jose";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";

const b64 = (v: unknown) =>
  Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

async function reason(verifier: TokenVerifier, token: string): Promise<string> {
  try {
    await verifier.verify(token);
  } catch (err) {
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe("UNAUTHENTICATED");
    expect((err as MeshError).status).toBe(401);
    return ((err as MeshError).data as { reason: string }).reason;
  }
  throw new Error("token was accepted");
}

let keys: MeshKeyPair;
let other: MeshKeyPair;
beforeAll(async () => {
  keys = await generateKeyPair();
  other = await generateKeyPair();
});
afterEach(() => {
  vi.useRealTimers();
});

const base = { sub: "alice", scope: "billing.*", issuer: "https://issuer.test" };
const verifierFor = (k: MeshKeyPair) =>
  createVerifier({ jwks: k.jwks, issuer: "https://issuer.test" });

describe("keys and issuing", () => {
  it.each(["EdDSA", "ES256", "RS256"] as KeyAlgorithm[])(
    "issues and verifies %s tokens",
    async (alg) => {
      const pair = await generateKeyPair({ alg });
      expect(pair.privateJwk.kid).toBe(pair.kid);
      expect(pair.publicJwk.d).toBeUndefined();
      expect(pair.jwks.keys).toHaveLength(1);
      const token = await issueToken({
        key: pair.privateJwk,
        ...base,
        scope: ["billing.*", "announce:billing"],
      });
      const v = await verifierFor(pair).verify(token);
      expect(v.claims.sub).toBe("alice");
      expect(v.scopes).toEqual(["billing.*", "announce:billing"]);
      expect(v.kid).toBe(pair.kid);
      expect(typeof v.claims.jti).toBe("string");
      expect(v.claims.aud).toBe("natsmesh");
    },
    20_000,
  );

  it("refuses to generate anything but EdDSA, ES256 and RS256", async () => {
    await expect(generateKeyPair({ alg: "HS256" as KeyAlgorithm })).rejects.toThrow(TypeError);
    await expect(generateKeyPair({ alg: "none" as KeyAlgorithm })).rejects.toThrow(TypeError);
  });

  it("refuses to sign with a public key", async () => {
    await expect(issueToken({ key: keys.publicJwk, ...base })).rejects.toThrow(TypeError);
  });

  it("keeps custom claims", async () => {
    const token = await issueToken({ key: keys.privateJwk, ...base, claims: { tenant: "t1" } });
    expect((await verifierFor(keys).verify(token)).claims.tenant).toBe("t1");
  });
});

describe("verification refuses", () => {
  it("an expired token beyond the 30 s skew, and accepts one within it", async () => {
    const old = await issueToken({ key: keys.privateJwk, ...base, ttl: -60 });
    expect(await reason(verifierFor(keys), old)).toBe("expired");
    const recent = await issueToken({ key: keys.privateJwk, ...base, ttl: -10 });
    await expect(verifierFor(keys).verify(recent)).resolves.toBeDefined();
  });

  it("a token not valid yet beyond the skew, and accepts one within it", async () => {
    const sign = (nbf: number) =>
      new SignJWT({ scope: "x.y" })
        .setProtectedHeader({ alg: "EdDSA", kid: keys.kid })
        .setSubject("a")
        .setAudience("natsmesh")
        .setIssuer(base.issuer)
        .setNotBefore(nbf)
        .setExpirationTime(now() + 3600)
        .sign(keys.privateJwk);
    expect(await reason(verifierFor(keys), await sign(now() + 120))).toBe("not_yet_valid");
    await expect(verifierFor(keys).verify(await sign(now() + 10))).resolves.toBeDefined();
  });

  it("the wrong issuer and the wrong audience", async () => {
    const t1 = await issueToken({ key: keys.privateJwk, ...base, issuer: "https://evil.test" });
    expect(await reason(verifierFor(keys), t1)).toBe("issuer");
    const t2 = await issueToken({ key: keys.privateJwk, ...base, audience: "other" });
    expect(await reason(verifierFor(keys), t2)).toBe("audience");
  });

  it("an unknown kid", async () => {
    const token = await issueToken({ key: other.privateJwk, ...base });
    expect(await reason(verifierFor(keys), token)).toBe("unknown_kid");
  });

  it("a token signed by another key under a known kid", async () => {
    const token = await issueToken({ key: other.privateJwk, ...base, kid: keys.kid });
    expect(await reason(verifierFor(keys), token)).toBe("signature");
  });

  it("a tampered payload", async () => {
    const token = await issueToken({ key: keys.privateJwk, ...base });
    const [h, , s] = token.split(".");
    const forged = `${h}.${b64({ sub: "root", scope: "*", aud: "natsmesh", iss: base.issuer, exp: now() + 60 })}.${s}`;
    expect(await reason(verifierFor(keys), forged)).toBe("signature");
  });

  it('alg "none"', async () => {
    const token = `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "root", scope: "*", aud: "natsmesh", exp: now() + 60 })}.`;
    expect(["algorithm", "malformed"]).toContain(await reason(verifierFor(keys), token));
  });

  it("HS256 signed with the public key as the secret (algorithm confusion)", async () => {
    const secret = new TextEncoder().encode(JSON.stringify(keys.publicJwk));
    const token = await new SignJWT({ scope: "*" })
      .setProtectedHeader({ alg: "HS256", kid: keys.kid })
      .setSubject("root")
      .setAudience("natsmesh")
      .setIssuer(base.issuer)
      .setExpirationTime(now() + 60)
      .sign(secret);
    expect(await reason(verifierFor(keys), token)).toBe("algorithm");
  });

  it("a token without exp or sub", async () => {
    const noExp = await new SignJWT({ scope: "*" })
      .setProtectedHeader({ alg: "EdDSA", kid: keys.kid })
      .setSubject("a")
      .setAudience("natsmesh")
      .setIssuer(base.issuer)
      .sign(keys.privateJwk);
    expect(await reason(verifierFor(keys), noExp)).toBe("claims");
    const noSub = await new SignJWT({ scope: "*" })
      .setProtectedHeader({ alg: "EdDSA", kid: keys.kid })
      .setAudience("natsmesh")
      .setIssuer(base.issuer)
      .setExpirationTime(now() + 60)
      .sign(keys.privateJwk);
    expect(await reason(verifierFor(keys), noSub)).toBe("claims");
  });

  it.each(["", "abc", "a.b.c", "...", "x".repeat(9000), "eyJ.eyJ.sig"])(
    "garbage %#",
    async (token) => {
      expect(["missing", "malformed", "too_long"]).toContain(
        await reason(verifierFor(keys), token),
      );
    },
  );

  it("a scope claim that is not a string", async () => {
    const token = await new SignJWT({ scope: ["*"] })
      .setProtectedHeader({ alg: "EdDSA", kid: keys.kid })
      .setSubject("a")
      .setAudience("natsmesh")
      .setIssuer(base.issuer)
      .setExpirationTime(now() + 60)
      .sign(keys.privateJwk);
    expect(await reason(verifierFor(keys), token)).toBe("claims");
  });
});

describe("interoperability", () => {
  it("accepts a token signed without jose (node:crypto Ed25519)", async () => {
    const header = b64({ alg: "EdDSA", typ: "JWT", kid: keys.kid });
    const payload = b64({
      sub: "bob",
      scope: "a.b",
      aud: "natsmesh",
      iss: base.issuer,
      exp: now() + 60,
    });
    const key = createPrivateKey({ key: keys.privateJwk as never, format: "jwk" });
    const signature = sign(null, Buffer.from(`${header}.${payload}`), key).toString("base64url");
    const v = await verifierFor(keys).verify(`${header}.${payload}.${signature}`);
    expect(v.claims.sub).toBe("bob");
  });
});

describe("shared secret", () => {
  const secret = "s".repeat(32);

  it("accepts HS256 only with an explicit secret", async () => {
    const token = await issueToken({ secret, ...base });
    await expect(
      createVerifier({ secret, issuer: base.issuer }).verify(token),
    ).resolves.toBeDefined();
    expect(await reason(verifierFor(keys), token)).toBe("algorithm");
  });

  it("refuses unsafe options with TypeError", () => {
    expect(() => createVerifier({ jwks: keys.jwks, algorithms: ["HS256"] })).toThrow(TypeError);
    expect(() => createVerifier({ jwks: keys.jwks, algorithms: ["none" as never] })).toThrow(
      TypeError,
    );
    expect(() => createVerifier({ secret: "short" })).toThrow(TypeError);
    expect(() => createVerifier({})).toThrow(TypeError);
    expect(() => createVerifier({ jwks: { keys: [keys.privateJwk] } })).toThrow(TypeError);
  });
});

describe("verified-token cache", () => {
  it("answers a verified token synchronously until it expires", async () => {
    const v = verifierFor(keys);
    const token = await issueToken({ key: keys.privateJwk, ...base, ttl: 60 });
    expect(v.cached(token)).toBeUndefined();
    const first = await v.verify(token);
    expect(v.cached(token)).toBe(first);
    expect(await v.verify(token)).toBe(first);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(((first.claims.exp as number) + 1) * 1000);
    expect(v.cached(token)).toBeUndefined();
    expect(v.size).toBe(0);
  });

  it("is bounded", async () => {
    const v = createVerifier({ jwks: keys.jwks, issuer: base.issuer, cacheSize: 3 });
    for (let i = 0; i < 5; i++)
      await v.verify(await issueToken({ key: keys.privateJwk, ...base, sub: `u${i}` }));
    expect(v.size).toBe(3);
  });

  it("drops tokens of a removed kid at once and refuses them afterwards", async () => {
    const v = createVerifier({
      jwks: { keys: [keys.publicJwk, other.publicJwk] },
      issuer: base.issuer,
    });
    const t1 = await issueToken({ key: keys.privateJwk, ...base });
    const t2 = await issueToken({ key: other.privateJwk, ...base });
    await v.verify(t1);
    await v.verify(t2);
    v.setJwks({ keys: [other.publicJwk] });
    expect(v.cached(t1)).toBeUndefined();
    expect(v.cached(t2)).toBeDefined();
    expect(await reason(v, t1)).toBe("unknown_kid");
  });
});

describe("token references", () => {
  it("are 128 bits of the token's SHA-256 in base64url, one per token", async () => {
    const a = await issueToken({ key: keys.privateJwk, ...base, sub: "a" });
    const b = await issueToken({ key: keys.privateJwk, ...base, sub: "b" });
    expect(tokenRef(a)).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(tokenRef(a)).toHaveLength(TOKEN_REF_LENGTH);
    expect(tokenRef(a)).toBe(tokenRef(a));
    expect(tokenRef(a)).not.toBe(tokenRef(b));
    const digest = createHash("sha256").update(a).digest();
    expect(tokenRef(a)).toBe(digest.subarray(0, 16).toString("base64url"));
  });

  it("resolve only to a token this verifier verified itself, with that token's claims", async () => {
    const v = verifierFor(keys);
    const a = await issueToken({ key: keys.privateJwk, ...base, sub: "a" });
    const b = await issueToken({ key: keys.privateJwk, ...base, sub: "b" });
    // Validly signed, but not verified here yet: a reference proves nothing on its own.
    expect(v.cachedByRef(tokenRef(a))).toBeUndefined();
    const verified = await v.verify(a);
    expect(v.cachedByRef(tokenRef(a))).toBe(verified);
    expect(v.cachedByRef(tokenRef(b))).toBeUndefined();
    await v.verify(b);
    expect(v.cachedByRef(tokenRef(b))?.claims.sub).toBe("b");
    expect(v.cachedByRef(tokenRef(a))?.claims.sub).toBe("a");
    expect(v.cachedByRef(a)).toBeUndefined();
    expect(v.cachedByRef("")).toBeUndefined();
  });

  it("expire with their token, at exp and without the clock skew", async () => {
    const v = verifierFor(keys);
    const token = await issueToken({ key: keys.privateJwk, ...base, ttl: 60 });
    const { claims } = await v.verify(token);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime((claims.exp as number) * 1000);
    expect(v.cachedByRef(tokenRef(token))).toBeUndefined();
    expect(v.size).toBe(0);
  });

  it("are dropped with their token when its key leaves the key set", async () => {
    const v = createVerifier({
      jwks: { keys: [keys.publicJwk, other.publicJwk] },
      issuer: base.issuer,
    });
    const t1 = await issueToken({ key: keys.privateJwk, ...base });
    const t2 = await issueToken({ key: other.privateJwk, ...base });
    await v.verify(t1);
    await v.verify(t2);
    v.setJwks({ keys: [other.publicJwk] });
    expect(v.cachedByRef(tokenRef(t1))).toBeUndefined();
    expect(v.cachedByRef(tokenRef(t2))).toBeDefined();
  });

  it("are bounded by the verified-token cache: an evicted token's reference is unknown", async () => {
    const v = createVerifier({ jwks: keys.jwks, issuer: base.issuer, cacheSize: 3 });
    const tokens: string[] = [];
    for (let i = 0; i < 5; i++) {
      tokens.push(await issueToken({ key: keys.privateJwk, ...base, sub: `u${i}` }));
      await v.verify(tokens.at(-1)!);
    }
    expect(v.size).toBe(3);
    expect(tokens.map((t) => v.cachedByRef(tokenRef(t))?.claims.sub)).toEqual([
      undefined,
      undefined,
      "u2",
      "u3",
      "u4",
    ]);
  });
});

describe("bearerToken", () => {
  it("takes the token out of an Authorization value", () => {
    expect(bearerToken("Bearer abc.def.ghi")).toBe("abc.def.ghi");
    expect(bearerToken("bearer abc")).toBe("abc");
    for (const bad of [undefined, "", "Bearer ", "Basic abc", "abc", "Bearer"])
      expect(bearerToken(bad)).toBeUndefined();
  });
});

describe("refusals are cheap", () => {
  it("answers a refused token from memory, synchronously, with one shared frozen error", async () => {
    const v = verifierFor(keys);
    const forged = await issueToken({ key: other.privateJwk, ...base, kid: keys.kid });
    expect(v.known(forged)).toBeUndefined();
    const first = await v.check(forged);
    expect(first).toBeInstanceOf(MeshError);
    const again = v.check(forged);
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(((first as MeshError).data as { reason: string }).reason).toBe("signature");
    // Another forgery with the same reason gets the very same object: no error built per token.
    const other2 = await issueToken({ key: other.privateJwk, ...base, kid: keys.kid, sub: "x" });
    expect(await v.check(other2)).toBe(first);
  });

  it("refuses without cryptography what can never verify", async () => {
    const v = verifierFor(keys);
    const expired = await issueToken({ key: keys.privateJwk, ...base, ttl: -120 });
    const unknownKid = await issueToken({ key: other.privateJwk, ...base });
    for (const [token, why] of [
      [expired, "expired"],
      [unknownKid, "unknown_kid"],
      ["a.b.c", "malformed"],
    ] as const) {
      const r = v.known(token);
      expect(r).toBeInstanceOf(MeshError);
      expect(((r as MeshError).data as { reason: string }).reason).toBe(why);
    }
  });

  it("shares one verification between checks of one token in flight", async () => {
    const v = verifierFor(keys);
    const token = await issueToken({ key: keys.privateJwk, ...base });
    const a = v.check(token);
    const b = v.check(token);
    expect(a).toBeInstanceOf(Promise);
    expect(b).toBe(a);
    expect(await a).toBe(v.cached(token));
  });

  it("forgets refusals when the key set changes: a new key can make a token good", async () => {
    const v = verifierFor(keys);
    const token = await issueToken({ key: other.privateJwk, ...base });
    expect(await reason(v, token)).toBe("unknown_kid");
    v.setJwks({ keys: [keys.publicJwk, other.publicJwk] });
    await expect(v.verify(token)).resolves.toBeDefined();
  });

  it("never verifies a token with a key published for another use", async () => {
    const presenceKey = { ...other.publicJwk, use: "natsmesh-presence" };
    const v = createVerifier({ jwks: { keys: [presenceKey] }, issuer: base.issuer });
    const token = await issueToken({ key: other.privateJwk, ...base });
    expect(await reason(v, token)).toBe("unknown_kid");
  });
});

describe("token lifetime", () => {
  const signed = (claims: Record<string, number | undefined>) => {
    let jwt = new SignJWT({ scope: "x.y" })
      .setProtectedHeader({ alg: "EdDSA", kid: keys.kid })
      .setSubject("a")
      .setAudience("natsmesh")
      .setIssuer(base.issuer)
      .setExpirationTime(claims.exp!);
    if (claims.iat !== undefined) jwt = jwt.setIssuedAt(claims.iat);
    return jwt.sign(keys.privateJwk);
  };

  it("refuses a token living longer than 24 h by default, exp in year 9999 included", async () => {
    const v = verifierFor(keys);
    expect(await reason(v, await signed({ iat: now(), exp: 253402300799 }))).toBe("lifetime");
    expect(await reason(v, await signed({ exp: 253402300799 }))).toBe("lifetime");
    expect(await reason(v, await signed({ iat: now(), exp: now() + 86_401 }))).toBe("lifetime");
    await expect(
      v.verify(await signed({ iat: now(), exp: now() + 86_400 })),
    ).resolves.toBeDefined();
    await expect(v.verify(await signed({ exp: now() + 86_400 }))).resolves.toBeDefined();
  });

  it("measures exp - iat, so a token issued long ago for long is refused even near its end", async () => {
    const v = verifierFor(keys);
    expect(await reason(v, await signed({ iat: now() - 200_000, exp: now() + 60 }))).toBe(
      "lifetime",
    );
  });

  it("refuses an iat in the future beyond the skew, which would stretch the lifetime", async () => {
    const v = verifierFor(keys);
    expect(await reason(v, await signed({ iat: now() + 3600, exp: now() + 7200 }))).toBe(
      "not_yet_valid",
    );
  });

  it("takes another maximum, and refuses a bad one with TypeError", async () => {
    const v = createVerifier({ jwks: keys.jwks, issuer: base.issuer, maxTokenLifetimeSec: 600 });
    expect(await reason(v, await signed({ iat: now(), exp: now() + 601 }))).toBe("lifetime");
    await expect(v.verify(await signed({ iat: now(), exp: now() + 600 }))).resolves.toBeDefined();
    expect(() => createVerifier({ jwks: keys.jwks, maxTokenLifetimeSec: -1 })).toThrow(TypeError);
    expect(() => createVerifier({ jwks: keys.jwks, maxTokenLifetimeSec: 1.5 })).toThrow(TypeError);
  });
});

describe("MESH_MAX_TOKEN_LIFETIME", () => {
  it("sets the verifiers' maximum lifetime, in whole seconds", () => {
    expect(maxTokenLifetimeFromEnv({})).toBeUndefined();
    expect(maxTokenLifetimeFromEnv({ MESH_MAX_TOKEN_LIFETIME: " " })).toBeUndefined();
    expect(maxTokenLifetimeFromEnv({ MESH_MAX_TOKEN_LIFETIME: "3600" })).toBe(3600);
    expect(
      authFromEnv({ MESH_JWKS: "kv", MESH_MAX_TOKEN_LIFETIME: "600" })?.maxTokenLifetimeSec,
    ).toBe(600);
    for (const bad of ["0", "-5", "1h", "1.5", "x"]) {
      expect(() => maxTokenLifetimeFromEnv({ MESH_MAX_TOKEN_LIFETIME: bad })).toThrow(TypeError);
    }
  });
});
