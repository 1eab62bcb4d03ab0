import {
  createLocalJWKSet,
  type FlattenedJWSInput,
  type JWTHeaderParameters,
  type JWTPayload,
  jwtVerify,
} from "jose";
import { MeshError } from "../errors.js";
import { DEFAULT_AUDIENCE, isTokenAlgorithm, type TokenAlgorithm } from "./algorithms.js";
import { assertJwks, type JsonWebKeySet } from "./keys.js";
import { parseScope } from "./scope.js";

/** Options of {@link createVerifier}. */
export interface TokenVerifierOptions {
  /** Public keys, looked up by `kid`. Replace later with `setJwks()` to rotate. */
  jwks?: JsonWebKeySet;
  /** Shared secret: enables HS256. Never implied by a public key. */
  secret?: string | Uint8Array;
  /** Required `iss`; not checked when omitted. */
  issuer?: string | string[];
  /** @default "natsmesh" */
  audience?: string | string[];
  /**
   * Allowed algorithms; `none` is never allowed and HS256 only with `secret`.
   * @default ["EdDSA", "ES256", "RS256"], plus "HS256" when `secret` is set
   */
  algorithms?: TokenAlgorithm[];
  /** @default 30 */
  clockToleranceSec?: number;
  /** Most verified tokens kept. @default 10000 */
  cacheSize?: number;
  /** Longest token accepted, in characters. @default 8192 */
  maxTokenLength?: number;
}

/** A token that passed verification. */
export interface VerifiedToken {
  /** Every claim of the token, custom ones included. */
  claims: JWTPayload & { sub: string; exp: number; scope?: string };
  /** The `scope` claim, split into patterns. */
  scopes: readonly string[];
  /** The `kid` of the key that verified it. */
  kid: string | undefined;
}

/** Verifies mesh tokens, with a bounded cache of verified ones. */
export interface TokenVerifier {
  /**
   * Verifies a token (the JWS compact string, without `Bearer `). Rejects with
   * `UNAUTHENTICATED` (`data.reason` says why); a cached token resolves without crypto.
   */
  verify(token: string): Promise<VerifiedToken>;
  /** The cached verification of `token` while it has not expired, else `undefined`. Synchronous. */
  cached(token: string): VerifiedToken | undefined;
  /** Replaces the key set; cached tokens of removed or changed keys are dropped at once. */
  setJwks(jwks: JsonWebKeySet): void;
  /** Number of cached tokens. */
  readonly size: number;
}

/** Why a token was refused, in `MeshError.data.reason`. */
export const TokenRejection = {
  missing: "missing",
  malformed: "malformed",
  tooLong: "too_long",
  expired: "expired",
  notYetValid: "not_yet_valid",
  issuer: "issuer",
  audience: "audience",
  claims: "claims",
  algorithm: "algorithm",
  unknownKey: "unknown_kid",
  signature: "signature",
} as const;
export type TokenRejection = (typeof TokenRejection)[keyof typeof TokenRejection];

/** Makes the `UNAUTHENTICATED` error for a refused token. */
export function unauthenticated(
  reason: TokenRejection,
  message: string,
  cause?: unknown,
): MeshError {
  return new MeshError("UNAUTHENTICATED", message, { data: { reason }, cause });
}

interface Entry {
  token: VerifiedToken;
  expiresAt: number;
  /** Verified with the shared secret, so a key rotation does not touch it. */
  bySecret: boolean;
}

type KeyGetter = (header: JWTHeaderParameters, input: FlattenedJWSInput) => Promise<unknown>;

class Verifier implements TokenVerifier {
  readonly #cache = new Map<string, Entry>();
  readonly #options: Required<
    Pick<TokenVerifierOptions, "clockToleranceSec" | "cacheSize" | "maxTokenLength">
  >;
  readonly #algorithms: TokenAlgorithm[];
  readonly #secret: Uint8Array | undefined;
  readonly #issuer: string | string[] | undefined;
  readonly #audience: string | string[];
  #keys: KeyGetter | undefined;
  #kidKeys = new Map<string, string>();
  #last: [string, Entry] | undefined;
  /** Bumped by every setJwks(): a verification that straddles a rotation is not cached. */
  #generation = 0;

  constructor(options: TokenVerifierOptions) {
    const { jwks, secret } = options;
    if (jwks === undefined && secret === undefined) {
      throw new TypeError("a token verifier needs a jwks or a secret");
    }
    this.#secret = typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
    if (this.#secret !== undefined && this.#secret.length < 32) {
      throw new TypeError("an HS256 secret must be at least 32 bytes");
    }
    const defaults: TokenAlgorithm[] = jwks === undefined ? [] : ["EdDSA", "ES256", "RS256"];
    if (this.#secret !== undefined) defaults.push("HS256");
    this.#algorithms = [...(options.algorithms ?? defaults)];
    for (const alg of this.#algorithms) {
      if (!isTokenAlgorithm(alg)) throw new TypeError(`algorithm ${String(alg)} is not allowed`);
      if (alg === "HS256" && this.#secret === undefined) {
        throw new TypeError("HS256 is allowed only with an explicit secret");
      }
    }
    this.#options = {
      clockToleranceSec: options.clockToleranceSec ?? 30,
      cacheSize: options.cacheSize ?? 10_000,
      maxTokenLength: options.maxTokenLength ?? 8192,
    };
    this.#issuer = options.issuer;
    this.#audience = options.audience ?? DEFAULT_AUDIENCE;
    if (jwks !== undefined) this.setJwks(jwks);
  }

  get size(): number {
    return this.#cache.size;
  }

  cached(token: string): VerifiedToken | undefined {
    // Most calls on a connection carry the same token as the one before: comparing two strings
    // is cheaper than hashing a fresh one for the map.
    const last = this.#last;
    const entry = last !== undefined && last[0] === token ? last[1] : this.#cache.get(token);
    if (entry === undefined) return undefined;
    if (Date.now() < entry.expiresAt) {
      if (last?.[0] !== token) this.#last = [token, entry];
      return entry.token;
    }
    this.#cache.delete(token);
    this.#last = undefined;
    return undefined;
  }

  async verify(token: string): Promise<VerifiedToken> {
    const hit = this.cached(token);
    if (hit !== undefined) return hit;
    if (typeof token !== "string" || token.length === 0) {
      throw unauthenticated("missing", "no token: send Authorization: Bearer <jwt>");
    }
    if (token.length > this.#options.maxTokenLength) {
      throw unauthenticated(
        "too_long",
        `token longer than ${this.#options.maxTokenLength} characters`,
      );
    }
    const generation = this.#generation;
    let payload: JWTPayload;
    let kid: string | undefined;
    let alg: string;
    try {
      const result = await jwtVerify(token, this.#key, {
        algorithms: this.#algorithms,
        audience: this.#audience,
        clockTolerance: this.#options.clockToleranceSec,
        requiredClaims: ["exp", "sub"],
        ...(this.#issuer === undefined ? {} : { issuer: this.#issuer }),
      });
      payload = result.payload;
      kid = result.protectedHeader.kid;
      alg = result.protectedHeader.alg;
    } catch (err) {
      throw rejection(err);
    }
    if (typeof payload.sub !== "string" || typeof payload.exp !== "number") {
      throw unauthenticated("claims", "token needs string sub and numeric exp claims");
    }
    if (payload.scope !== undefined && typeof payload.scope !== "string") {
      throw unauthenticated("claims", "scope claim must be a space-separated string");
    }
    const verified: VerifiedToken = {
      claims: payload as VerifiedToken["claims"],
      scopes: Object.freeze(parseScope(payload.scope)),
      kid,
    };
    this.#remember(
      token,
      {
        token: verified,
        expiresAt: payload.exp * 1000,
        bySecret: alg === "HS256",
      },
      generation,
    );
    return verified;
  }

  setJwks(jwks: JsonWebKeySet): void {
    assertJwks(jwks);
    const next = new Map<string, string>();
    for (const key of jwks.keys) if (key.kid !== undefined) next.set(key.kid, JSON.stringify(key));
    // Tokens verified by a key that is gone or changed must not outlive it in the cache.
    for (const [token, { token: verified, bySecret }] of this.#cache) {
      const kid = verified.kid;
      if (bySecret) continue;
      if (kid === undefined || next.get(kid) !== this.#kidKeys.get(kid)) this.#cache.delete(token);
    }
    this.#kidKeys = next;
    this.#last = undefined;
    this.#generation++;
    this.#keys = createLocalJWKSet(jwks) as KeyGetter;
  }

  #key = async (header: JWTHeaderParameters, input: FlattenedJWSInput): Promise<never> => {
    if (header.alg === "HS256") {
      if (this.#secret === undefined) throw unauthenticated("algorithm", "HS256 is not allowed");
      return this.#secret as never;
    }
    if (this.#keys === undefined)
      throw unauthenticated("unknown_kid", "no public keys are configured");
    return (await this.#keys(header, input)) as never;
  };

  #remember(token: string, entry: Entry, generation: number): void {
    if (entry.expiresAt <= Date.now() || this.#options.cacheSize === 0) return;
    if (generation !== this.#generation) return;
    if (this.#cache.size >= this.#options.cacheSize) {
      // Oldest first: Map keeps insertion order, so this is FIFO eviction in O(1).
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
      this.#last = undefined;
    }
    this.#cache.set(token, entry);
  }
}

function rejection(err: unknown): MeshError {
  if (err instanceof MeshError) return err;
  const code = (err as { code?: string }).code;
  const claim = (err as { claim?: string }).claim;
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return unauthenticated("expired", "token has expired", err);
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      if (claim === "nbf" || claim === "iat") {
        return unauthenticated("not_yet_valid", "token is not valid yet", err);
      }
      if (claim === "iss") return unauthenticated("issuer", "token has the wrong issuer", err);
      if (claim === "aud") return unauthenticated("audience", "token has the wrong audience", err);
      return unauthenticated("claims", `token claim ${claim ?? "?"} is invalid`, err);
    case "ERR_JOSE_ALG_NOT_ALLOWED":
    case "ERR_JOSE_NOT_SUPPORTED":
      return unauthenticated("algorithm", "token algorithm is not allowed", err);
    case "ERR_JWKS_NO_MATCHING_KEY":
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
      return unauthenticated("unknown_kid", "no known key matches the token's kid", err);
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return unauthenticated("signature", "token signature is invalid", err);
    default:
      return unauthenticated("malformed", "token is malformed", err);
  }
}

/** Creates a token verifier; throws `TypeError` on unsafe options (HS256 without a secret, …). */
export function createVerifier(options: TokenVerifierOptions): TokenVerifier {
  return new Verifier(options);
}

/** Takes the token out of an `Authorization: Bearer <jwt>` value, or `undefined`. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined || authorization.length < 8) return undefined;
  const scheme = authorization.slice(0, 7);
  if (scheme !== "Bearer " && scheme.toLowerCase() !== "bearer ") return undefined;
  const token = authorization.slice(7).trim();
  return token.length > 0 ? token : undefined;
}
