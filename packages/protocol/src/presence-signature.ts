import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import type { JWK } from "jose";
import { MeshError } from "./errors.js";
import type { InstanceRecord } from "./presence.js";
import { assertJwks, type JsonWebKeySet } from "./tokens/keys.js";

/**
 * The signature a registry adds to a record it writes into `<P>_presence`, as the field `sig` of
 * the stored JSON: Ed25519 over {@link presenceSigningInput}, by a key whose public half (with
 * the same `kid`) is in the key set readers trust. Readers that know no keys ignore the field.
 */
export interface PresenceSignature {
  alg: "EdDSA";
  kid: string;
  /** The 64-byte Ed25519 signature, base64url without padding. */
  value: string;
}

/** Why a record's signature was refused; `MeshError.data.reason` of the `UNAUTHENTICATED` error. */
export const SignatureProblem = {
  /** No `sig` field. */
  unsigned: "unsigned",
  /** A `sig` that does not verify, or is not an Ed25519 signature by a known key. */
  invalid: "invalid-signature",
} as const;
export type SignatureProblem = (typeof SignatureProblem)[keyof typeof SignatureProblem];

/** Domain separation: these bytes can never be mistaken for a JWS signing input, and v2 differs. */
const CONTEXT = "natsmesh-presence-v1\n";
const MAX_KID = 256;
const SIGNATURE = /^[A-Za-z0-9_-]{86}$/;

/**
 * The JSON of a record that is signed, stored and compared. The validated record already has a
 * fixed field order; only metadata keys keep the sender's order, so they are sorted: `{a,b}` and
 * `{b,a}` are the same record.
 */
export function canonicalRecord(record: InstanceRecord): string {
  const sorted = Object.entries(record.metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify({ ...record, metadata: Object.fromEntries(sorted) });
}

/** The bytes a presence signature covers: a context string, the KV key and the canonical record. */
export function presenceSigningInput(key: string, record: InstanceRecord): Buffer {
  return Buffer.from(`${CONTEXT}${key}\n${canonicalRecord(record)}`, "utf8");
}

function isEd25519(jwk: JWK): boolean {
  return jwk.kty === "OKP" && jwk.crv === "Ed25519";
}

/** Signs the records a registry writes. */
export interface PresenceSigner {
  readonly kid: string;
  /**
   * The key's public half (`kty`, `crv`, `x`, `kid`, `alg`, `use`; never `d`): what a
   * registry publishes under `presence-jwks` in `<P>_registry`.
   */
  readonly publicJwk: JWK;
  /** The signature of `record` stored under `key`. */
  sign(key: string, record: InstanceRecord): PresenceSignature;
  /** The value to store: the canonical record with its signature as the last field. */
  signedValue(key: string, record: InstanceRecord): string;
}

/**
 * A signer for an Ed25519 private JWK with a `kid` (as `natsmesh keys generate` writes it).
 * Throws `TypeError` for anything else; the key's public half must be in the readers' key set.
 */
export function createPresenceSigner(privateJwk: JWK): PresenceSigner {
  if (privateJwk === null || typeof privateJwk !== "object" || !isEd25519(privateJwk)) {
    throw new TypeError(
      'the presence signing key must be an Ed25519 JWK (kty "OKP", crv "Ed25519")',
    );
  }
  if (typeof privateJwk.d !== "string") {
    throw new TypeError('the presence signing key must be a private JWK (with "d")');
  }
  const kid = privateJwk.kid;
  if (typeof kid !== "string" || kid === "" || kid.length > MAX_KID) {
    throw new TypeError(
      "the presence signing key needs a kid (the one its public half has in the JWKS)",
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: privateJwk as import("node:crypto").JsonWebKey, format: "jwk" });
  } catch (err) {
    throw new TypeError("the presence signing key is not a usable Ed25519 key", { cause: err });
  }
  const { kty, crv, x } = createPublicKey(key).export({ format: "jwk" });
  const publicJwk: JWK = { kty, crv, x, kid, alg: "EdDSA", use: "sig" };
  const signer: PresenceSigner = {
    kid,
    publicJwk,
    sign: (k, record) => ({
      alg: "EdDSA",
      kid,
      value: sign(null, presenceSigningInput(k, record), key).toString("base64url"),
    }),
    signedValue: (k, record) => {
      const json = canonicalRecord(record);
      return `${json.slice(0, -1)},"sig":${JSON.stringify(signer.sign(k, record))}}`;
    },
  };
  return signer;
}

/**
 * The public keys presence readers check signatures with: the Ed25519 keys of a key set, by
 * `kid`. Other keys of the set (ES256, RS256 token keys) are not used for records.
 */
export class PresenceKeys {
  #keys = new Map<string, KeyObject>();

  constructor(jwks: JsonWebKeySet = { keys: [] }) {
    this.setJwks(jwks);
  }

  /** How many keys can verify records. */
  get size(): number {
    return this.#keys.size;
  }

  /** Replaces the keys (rotation); throws `TypeError` on a value that is not a public key set. */
  setJwks(jwks: JsonWebKeySet): void {
    assertJwks(jwks);
    const next = new Map<string, KeyObject>();
    for (const jwk of jwks.keys) {
      if (!isEd25519(jwk) || typeof jwk.kid !== "string") continue;
      try {
        next.set(
          jwk.kid,
          createPublicKey({ key: jwk as import("node:crypto").JsonWebKey, format: "jwk" }),
        );
      } catch {
        // A broken key verifies nothing; the others still do.
      }
    }
    this.#keys = next;
  }

  /**
   * Checks the `sig` field of a stored record (the value as parsed, untrusted) for the record
   * validated from it, stored under `key`. Returns `undefined` when it verifies, else the
   * `UNAUTHENTICATED` error with `data.reason` a {@link SignatureProblem}. Never throws.
   */
  check(key: string, record: InstanceRecord, sig: unknown): MeshError | undefined {
    if (sig === undefined) return refused(SignatureProblem.unsigned, "the record is not signed");
    const s = sig as Partial<PresenceSignature> | null;
    if (
      s === null ||
      typeof s !== "object" ||
      s.alg !== "EdDSA" ||
      typeof s.kid !== "string" ||
      typeof s.value !== "string" ||
      !SIGNATURE.test(s.value)
    ) {
      return refused(SignatureProblem.invalid, "the record's sig is not an EdDSA signature");
    }
    const pub = this.#keys.get(s.kid);
    if (pub === undefined) {
      return refused(SignatureProblem.invalid, "the record is signed by an unknown key");
    }
    const ok = verify(
      null,
      presenceSigningInput(key, record),
      pub,
      Buffer.from(s.value, "base64url"),
    );
    return ok ? undefined : refused(SignatureProblem.invalid, "the record's signature is wrong");
  }
}

function refused(reason: SignatureProblem, why: string): MeshError {
  return new MeshError("UNAUTHENTICATED", `invalid presence entry: ${why}`, {
    data: { reason },
  });
}
