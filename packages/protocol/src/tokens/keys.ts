import { calculateJwkThumbprint, exportJWK, type JWK, generateKeyPair as joseKeyPair } from "jose";
import { isTokenAlgorithm, type KeyAlgorithm } from "./algorithms.js";

/** A JSON Web Key Set holding public keys. */
export interface JsonWebKeySet {
  keys: JWK[];
}

/** Options of {@link generateKeyPair}. */
export interface GenerateKeyPairOptions {
  /**
   * Signature algorithm of the pair.
   * @default "EdDSA"
   */
  alg?: KeyAlgorithm;
}

/** A key pair as JWKs: keep `privateJwk` secret; publish `jwks`. */
export interface MeshKeyPair {
  alg: KeyAlgorithm;
  /** The key id: the RFC 7638 thumbprint of the public key. */
  kid: string;
  /** Private key, with `kid`, `alg` and `use: "sig"`; what {@link issueToken} signs with. */
  privateJwk: JWK;
  /** Public key, with `kid`, `alg` and `use: "sig"`. */
  publicJwk: JWK;
  /** A key set holding just the public key. */
  jwks: JsonWebKeySet;
}

/** Generates a signing key pair (Ed25519 by default, or ES256 / RS256) as JWKs with a `kid`. */
export async function generateKeyPair(options: GenerateKeyPairOptions = {}): Promise<MeshKeyPair> {
  const alg = options.alg ?? "EdDSA";
  if (!isTokenAlgorithm(alg) || (alg as string) === "HS256") {
    throw new TypeError(`alg must be "EdDSA", "ES256" or "RS256", got ${String(alg)}`);
  }
  const { privateKey, publicKey } = await joseKeyPair(alg, {
    extractable: true,
    ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}),
  });
  const pub = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(pub);
  const publicJwk: JWK = { ...pub, kid, alg, use: "sig" };
  const privateJwk: JWK = { ...(await exportJWK(privateKey)), kid, alg, use: "sig" };
  return { alg, kid, privateJwk, publicJwk, jwks: { keys: [publicJwk] } };
}

/**
 * Checks that untrusted JSON is a key set of public signing keys. Throws `TypeError` on
 * anything else, including a set that holds private key material.
 */
export function assertJwks(value: unknown): asserts value is JsonWebKeySet {
  const keys = (value as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new TypeError('a JWKS must be an object with a "keys" array');
  for (const [i, key] of keys.entries()) {
    if (key === null || typeof key !== "object" || typeof key.kty !== "string") {
      throw new TypeError(`JWKS key ${i} is not a JWK`);
    }
    if ("d" in key || key.kty === "oct") {
      throw new TypeError(
        `JWKS key ${i} holds private or symmetric key material; publish public keys only`,
      );
    }
  }
}
