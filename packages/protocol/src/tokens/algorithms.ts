/** Asymmetric algorithms a key pair can be generated for; `EdDSA` (Ed25519) is the default. */
export const KeyAlgorithm = { EdDSA: "EdDSA", ES256: "ES256", RS256: "RS256" } as const;
export type KeyAlgorithm = (typeof KeyAlgorithm)[keyof typeof KeyAlgorithm];

/** Every algorithm a verifier may allow; HS256 only with an explicit shared secret. */
export const TokenAlgorithm = { ...KeyAlgorithm, HS256: "HS256" } as const;
export type TokenAlgorithm = (typeof TokenAlgorithm)[keyof typeof TokenAlgorithm];

/** Default audience of mesh tokens. */
export const DEFAULT_AUDIENCE = "natsmesh";

/** True for an algorithm name this package signs or verifies. */
export function isTokenAlgorithm(alg: unknown): alg is TokenAlgorithm {
  return typeof alg === "string" && Object.hasOwn(TokenAlgorithm, alg);
}
