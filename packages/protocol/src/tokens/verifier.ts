import {
  createLocalJWKSet,
  type FlattenedJWSInput,
  type JWK,
  type JWTHeaderParameters,
  type JWTPayload,
  jwtVerify,
} from "jose";
import type { MeshError } from "../errors.js";
import { isIntInRange } from "../integers.js";
import { DEFAULT_AUDIENCE, isTokenAlgorithm, type TokenAlgorithm } from "./algorithms.js";
import { assertJwks, type JsonWebKeySet } from "./keys.js";
import { precheck } from "./precheck.js";
import { RejectedCache } from "./rejected-cache.js";
import { rejection, type TokenRejection } from "./rejections.js";
import { parseScope } from "./scope.js";
import { tokenRef } from "./token-ref.js";

/** Defaults of {@link TokenVerifierOptions}. */
export const VERIFIER_DEFAULTS = {
  clockToleranceSec: 30,
  cacheSize: 10_000,
  rejectedCacheSize: 10_000,
  maxTokenLength: 8192,
  /** A day: long enough for a deployment's token, short enough that a leaked one dies. */
  maxTokenLifetimeSec: 86_400,
} as const;

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
  /** Most refused tokens remembered (by digest), so a replayed forgery costs no cryptography. @default 10000 */
  rejectedCacheSize?: number;
  /** Longest token accepted, in characters. @default 8192 */
  maxTokenLength?: number;
  /**
   * Longest lifetime accepted, in seconds: `exp - iat`, or `exp - now` for a token without
   * `iat`. Longer-lived tokens are refused with reason `lifetime`.
   * @default 86400 (24 h)
   */
  maxTokenLifetimeSec?: number;
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

/** Verifies mesh tokens, with a bounded cache of verified ones and one of refused ones. */
export interface TokenVerifier {
  /**
   * Verifies a token (the JWS compact string, without `Bearer `). Rejects with
   * `UNAUTHENTICATED` (`data.reason` says why); a cached token resolves without crypto.
   */
  verify(token: string): Promise<VerifiedToken>;
  /**
   * Like {@link TokenVerifier.verify}, but never throws: the verified token or the (shared,
   * frozen) `UNAUTHENTICATED` error, synchronously whenever no signature must be checked (a
   * cached token, a refused one, one that cannot verify anyway). Checks of one token in
   * flight at once share one verification, so their results arrive in call order.
   */
  check(token: string | undefined): VerifiedToken | MeshError | Promise<VerifiedToken | MeshError>;
  /**
   * What {@link TokenVerifier.check} can tell without checking a signature: the verified token,
   * the refusal, or `undefined` when only a signature check (or one in flight) can tell.
   * Synchronous and cheap, so a caller can decide whether to afford the check at all.
   */
  /**
   * Like {@link TokenVerifier.check}, but as of the instant `atMs` (Unix epoch ms) instead of
   * now: signature, issuer and audience with today's keys, `exp`, `nbf` and `iat` against that
   * instant (with the clock tolerance). For events, whose token must have been valid when the
   * stream stored them. Never synchronous: an event is not on a hot path of its own.
   */
  checkAt(token: string | undefined, atMs: number): Promise<VerifiedToken | MeshError>;
  known(token: string | undefined): VerifiedToken | MeshError | undefined;
  /** The cached verification of `token` while it has not expired, else `undefined`. Synchronous. */
  cached(token: string): VerifiedToken | undefined;
  /**
   * The cached verification of the token whose {@link tokenRef} is `ref`, while it has not
   * expired; `undefined` when this verifier has not verified such a token itself (or has
   * dropped it: expiry, eviction, key rotation). Synchronous: a map lookup.
   */
  cachedByRef(ref: string): VerifiedToken | undefined;
  /** Replaces the key set; cached tokens of removed or changed keys are dropped at once. */
  setJwks(jwks: JsonWebKeySet): void;
  /** Number of cached tokens. */
  readonly size: number;
}

interface Entry {
  token: VerifiedToken;
  expiresAt: number;
  /** Verified with the shared secret, so a key rotation does not touch it. */
  bySecret: boolean;
  /** The token itself and its reference: an entry is kept under both, or under neither. */
  jwt: string;
  ref: string;
}

type KeyGetter = (header: JWTHeaderParameters, input: FlattenedJWSInput) => Promise<unknown>;

/** Keys that sign tokens: a key published for another use (`use` other than "sig") never does. */
function signingKeys(jwks: JsonWebKeySet): JWK[] {
  return jwks.keys.filter((k) => k.use === undefined || k.use === "sig");
}

function positiveInt(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback;
  if (!isIntInRange(v, 0, Number.MAX_SAFE_INTEGER))
    throw new TypeError(`${what} must be an integer ≥ 0`);
  return v;
}

/** Refusals that depend on the instant a token is checked at. */
const TIMELY: ReadonlySet<TokenRejection> = new Set(["expired", "not_yet_valid"]);

class Verifier implements TokenVerifier {
  readonly #cache = new Map<string, Entry>();
  /** The same entries by token reference; never holds one that `#cache` does not. */
  readonly #refs = new Map<string, Entry>();
  readonly #rejected: RejectedCache;
  readonly #inflight = new Map<string, Promise<VerifiedToken | MeshError>>();
  readonly #options: Required<
    Pick<
      TokenVerifierOptions,
      "clockToleranceSec" | "cacheSize" | "maxTokenLength" | "maxTokenLifetimeSec"
    >
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
    const D = VERIFIER_DEFAULTS;
    this.#options = {
      clockToleranceSec: positiveInt(
        options.clockToleranceSec,
        D.clockToleranceSec,
        "clockToleranceSec",
      ),
      cacheSize: positiveInt(options.cacheSize, D.cacheSize, "cacheSize"),
      maxTokenLength: positiveInt(options.maxTokenLength, D.maxTokenLength, "maxTokenLength"),
      maxTokenLifetimeSec: positiveInt(
        options.maxTokenLifetimeSec,
        D.maxTokenLifetimeSec,
        "maxTokenLifetimeSec",
      ),
    };
    this.#rejected = new RejectedCache(
      positiveInt(options.rejectedCacheSize, D.rejectedCacheSize, "rejectedCacheSize"),
    );
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
    this.#forget(entry);
    return undefined;
  }

  cachedByRef(ref: string): VerifiedToken | undefined {
    const entry = this.#refs.get(ref);
    if (entry === undefined) return undefined;
    if (Date.now() < entry.expiresAt) return entry.token;
    this.#forget(entry);
    return undefined;
  }

  #forget(entry: Entry): void {
    this.#cache.delete(entry.jwt);
    this.#refs.delete(entry.ref);
    this.#last = undefined;
  }

  async verify(token: string): Promise<VerifiedToken> {
    const result = await this.check(token);
    if (isVerified(result)) return result;
    throw result;
  }

  check(token: string | undefined): VerifiedToken | MeshError | Promise<VerifiedToken | MeshError> {
    const known = this.known(token);
    if (known !== undefined) return known;
    const t = token as string;
    const running = this.#inflight.get(t);
    if (running !== undefined) return running;
    const verification = this.#verify(t, this.#generation).finally(() => this.#inflight.delete(t));
    this.#inflight.set(t, verification);
    return verification;
  }

  async checkAt(token: string | undefined, atMs: number): Promise<VerifiedToken | MeshError> {
    if (typeof token !== "string" || token.length === 0) return rejection("missing");
    if (token.length > this.#options.maxTokenLength) return rejection("too_long");
    const atSec = atMs / 1000;
    const tolerance = this.#options.clockToleranceSec;
    // A cached token has a good signature for the current keys; only its times need checking.
    const entry = this.#cache.get(token);
    if (entry !== undefined) {
      const { exp, nbf, iat } = entry.token.claims;
      if (atSec >= exp + tolerance) return rejection("expired");
      // Issued or valid only after that instant: it cannot have been used then.
      const from = Math.max(
        typeof nbf === "number" ? nbf : Number.NEGATIVE_INFINITY,
        typeof iat === "number" ? iat : Number.NEGATIVE_INFINITY,
      );
      if (atSec < from - tolerance) return rejection("not_yet_valid");
      return entry.token;
    }
    // A refusal for time was about another instant; the others hold at any instant.
    const refused = this.#rejected.get(token);
    if (refused !== undefined && !TIMELY.has(refused)) return rejection(refused);
    const early = precheck(
      token,
      {
        algorithms: this.#algorithms,
        knownKid: (kid) => this.#kidKeys.has(kid),
        clockToleranceSec: tolerance,
        maxLifetimeSec: this.#options.maxTokenLifetimeSec,
      },
      atSec,
    );
    if (early !== undefined) {
      return TIMELY.has(early) ? rejection(early) : this.#refuse(token, early, this.#generation);
    }
    return this.#verify(token, this.#generation, atMs);
  }

  known(token: string | undefined): VerifiedToken | MeshError | undefined {
    if (typeof token !== "string" || token.length === 0) return rejection("missing");
    const hit = this.cached(token);
    if (hit !== undefined) return hit;
    if (token.length > this.#options.maxTokenLength) return rejection("too_long");
    const refused = this.#rejected.get(token);
    if (refused !== undefined) return rejection(refused);
    if (this.#inflight.has(token)) return undefined;
    const early = precheck(
      token,
      {
        algorithms: this.#algorithms,
        knownKid: (kid) => this.#kidKeys.has(kid),
        clockToleranceSec: this.#options.clockToleranceSec,
        maxLifetimeSec: this.#options.maxTokenLifetimeSec,
      },
      Date.now() / 1000,
    );
    return early === undefined ? undefined : this.#refuse(token, early, this.#generation);
  }

  async #verify(
    token: string,
    generation: number,
    atMs?: number,
  ): Promise<VerifiedToken | MeshError> {
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
        ...(atMs === undefined ? {} : { currentDate: new Date(atMs) }),
      });
      payload = result.payload;
      kid = result.protectedHeader.kid;
      alg = result.protectedHeader.alg;
    } catch (err) {
      const reason = reasonOf(err);
      // Checked at another instant than now: a time verdict says nothing about now.
      if (atMs !== undefined && TIMELY.has(reason)) return rejection(reason);
      return this.#refuse(token, reason, generation);
    }
    // The precheck read these very bytes; now they are verified, they are typed from here.
    const verified: VerifiedToken = {
      claims: payload as VerifiedToken["claims"],
      scopes: Object.freeze(parseScope(payload.scope)),
      kid,
    };
    this.#remember(
      {
        token: verified,
        expiresAt: (payload.exp as number) * 1000,
        bySecret: alg === "HS256",
        jwt: token,
        ref: tokenRef(token),
      },
      generation,
    );
    return verified;
  }

  setJwks(jwks: JsonWebKeySet): void {
    assertJwks(jwks);
    const keys = signingKeys(jwks);
    const next = new Map<string, string>();
    for (const key of keys) if (key.kid !== undefined) next.set(key.kid, JSON.stringify(key));
    // Tokens verified by a key that is gone or changed must not outlive it in the cache.
    for (const entry of [...this.#cache.values()]) {
      const kid = entry.token.kid;
      if (entry.bySecret) continue;
      if (kid === undefined || next.get(kid) !== this.#kidKeys.get(kid)) this.#forget(entry);
    }
    // A new key may make a refused token good.
    this.#rejected.clear();
    this.#kidKeys = next;
    this.#last = undefined;
    this.#generation++;
    this.#keys = createLocalJWKSet({ keys }) as KeyGetter;
  }

  #key = async (header: JWTHeaderParameters, input: FlattenedJWSInput): Promise<never> => {
    if (header.alg === "HS256") {
      if (this.#secret === undefined) throw rejection("algorithm");
      return this.#secret as never;
    }
    if (this.#keys === undefined) throw rejection("unknown_kid");
    return (await this.#keys(header, input)) as never;
  };

  #refuse(token: string, reason: TokenRejection, generation: number): MeshError {
    // Time heals "not valid yet"; a refusal reached with keys since replaced proves nothing.
    if (reason !== "not_yet_valid" && generation === this.#generation) {
      this.#rejected.add(token, reason);
    }
    return rejection(reason);
  }

  #remember(entry: Entry, generation: number): void {
    if (entry.expiresAt <= Date.now() || this.#options.cacheSize === 0) return;
    if (generation !== this.#generation) return;
    if (this.#cache.size >= this.#options.cacheSize) {
      // Oldest first: Map keeps insertion order, so this is FIFO eviction in O(1).
      const oldest = this.#cache.values().next().value;
      if (oldest !== undefined) this.#forget(oldest);
    }
    this.#cache.set(entry.jwt, entry);
    this.#refs.set(entry.ref, entry);
  }
}

function isVerified(result: VerifiedToken | MeshError): result is VerifiedToken {
  return "claims" in result;
}

/** Why jose refused a token. */
function reasonOf(err: unknown): TokenRejection {
  const data = (err as { data?: { reason?: TokenRejection } }).data;
  if (data?.reason !== undefined) return data.reason;
  const code = (err as { code?: string }).code;
  const claim = (err as { claim?: string }).claim;
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return "expired";
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      if (claim === "nbf" || claim === "iat") return "not_yet_valid";
      if (claim === "iss") return "issuer";
      if (claim === "aud") return "audience";
      return "claims";
    case "ERR_JOSE_ALG_NOT_ALLOWED":
    case "ERR_JOSE_NOT_SUPPORTED":
      return "algorithm";
    case "ERR_JWKS_NO_MATCHING_KEY":
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
      return "unknown_kid";
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return "signature";
    default:
      return "malformed";
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
