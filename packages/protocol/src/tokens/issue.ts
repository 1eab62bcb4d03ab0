import { type CryptoKey, importJWK, type JWK, type JWTPayload, SignJWT } from "jose";
import { DEFAULT_AUDIENCE, isTokenAlgorithm, type TokenAlgorithm } from "./algorithms.js";

/** Options of {@link issueToken}. */
export interface IssueTokenOptions {
  /** Private signing key (a JWK from `generateKeyPair`, or a `CryptoKey`); or use `secret`. */
  key?: JWK | CryptoKey;
  /** Shared secret for HS256, only when the mesh is configured with one explicitly. */
  secret?: string | Uint8Array;
  /** @default the JWK's `alg`; "HS256" with `secret` */
  alg?: TokenAlgorithm;
  /** @default the JWK's `kid` */
  kid?: string;
  /** The caller's identity. */
  sub: string;
  /** Scope patterns: a space-separated string or a list (`["billing.*", "announce:billing"]`). */
  scope: string | readonly string[];
  /**
   * Lifetime: seconds, or a jose time span such as `"1h"`.
   * @default 3600
   */
  ttl?: number | string;
  issuer?: string;
  /** @default "natsmesh" */
  audience?: string;
  /** Unique token id. @default a random UUID */
  jti?: string;
  /** Extra claims (custom); cannot override the registered ones above. */
  claims?: Record<string, unknown>;
}

/** Signs a mesh token (JWS compact) with `exp`, `iat`, `jti`, `aud` and `scope`. */
export async function issueToken(options: IssueTokenOptions): Promise<string> {
  const { sub, ttl = 3600 } = options;
  if (typeof sub !== "string" || sub.length === 0)
    throw new TypeError("sub must be a non-empty string");
  const scope = typeof options.scope === "string" ? options.scope : options.scope.join(" ");
  const [key, alg, kid] = await signingKey(options);
  const jwt = new SignJWT({ ...options.claims, scope } satisfies JWTPayload)
    .setProtectedHeader({ alg, typ: "JWT", ...(kid === undefined ? {} : { kid }) })
    .setSubject(sub)
    .setAudience(options.audience ?? DEFAULT_AUDIENCE)
    .setIssuedAt()
    .setJti(options.jti ?? crypto.randomUUID())
    .setExpirationTime(typeof ttl === "number" ? Math.floor(Date.now() / 1000) + ttl : ttl);
  if (options.issuer !== undefined) jwt.setIssuer(options.issuer);
  return jwt.sign(key);
}

async function signingKey(
  options: IssueTokenOptions,
): Promise<[CryptoKey | Uint8Array, TokenAlgorithm, string | undefined]> {
  if (options.secret !== undefined) {
    const secret =
      typeof options.secret === "string"
        ? new TextEncoder().encode(options.secret)
        : options.secret;
    return [secret, "HS256", options.kid];
  }
  const { key } = options;
  if (key === undefined) throw new TypeError("issueToken needs a private key or a secret");
  if (isJwk(key)) {
    const alg = options.alg ?? key.alg;
    if (!isTokenAlgorithm(alg) || alg === "HS256") {
      throw new TypeError(`the key's alg must be "EdDSA", "ES256" or "RS256", got ${String(alg)}`);
    }
    if (typeof key.d !== "string") throw new TypeError("issueToken needs the private JWK");
    return [(await importJWK(key, alg)) as CryptoKey, alg, options.kid ?? key.kid];
  }
  if (options.alg === undefined) throw new TypeError("alg is required with a CryptoKey");
  return [key, options.alg, options.kid];
}

function isJwk(key: JWK | CryptoKey): key is JWK {
  return "kty" in key;
}
