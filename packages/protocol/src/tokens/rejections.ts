import { MeshError } from "../errors.js";

/** Why a token was refused, in `MeshError.data.reason`. */
export const TokenRejection = {
  missing: "missing",
  malformed: "malformed",
  tooLong: "too_long",
  expired: "expired",
  notYetValid: "not_yet_valid",
  lifetime: "lifetime",
  issuer: "issuer",
  audience: "audience",
  claims: "claims",
  algorithm: "algorithm",
  unknownKey: "unknown_kid",
  signature: "signature",
  /**
   * A `Mesh-Token-Ref` this verifier holds no verified token for: not an error of the caller's
   * token, a request to send it in full (docs/protocol.md §11.6).
   */
  unknownRef: "unknown_ref",
} as const;
export type TokenRejection = (typeof TokenRejection)[keyof typeof TokenRejection];

const MESSAGES: Record<TokenRejection, string> = {
  missing: "no token: send Authorization: Bearer <jwt>",
  malformed: "token is malformed: expected Authorization: Bearer <header>.<payload>.<signature>",
  too_long: "token is longer than the verifier accepts (maxTokenLength, default 8192 characters)",
  expired: "token has expired",
  not_yet_valid: "token is not valid yet (nbf or iat lies in the future)",
  lifetime:
    "token lives longer than the verifier accepts (maxTokenLifetimeSec, default 24 h): issue a shorter one",
  issuer: "token has the wrong issuer",
  audience: "token has the wrong audience",
  claims: "token claims are invalid: it needs a string sub, a numeric exp and a string scope",
  algorithm: "token algorithm is not allowed",
  unknown_kid: "no known key matches the token's kid",
  signature: "token signature is invalid",
  unknown_ref:
    "this instance has not verified the token this Mesh-Token-Ref stands for: send it once in full (Authorization: Bearer <jwt>)",
};

/** Makes the `UNAUTHENTICATED` error for a refused token. */
export function unauthenticated(
  reason: TokenRejection,
  message: string,
  cause?: unknown,
): MeshError {
  return new MeshError("UNAUTHENTICATED", message, { data: { reason }, cause });
}

// Refusing a token must cost next to nothing, or refusing a flood of them is a denial of
// service in itself: one frozen error per reason, made once, never a stack per token.
const SHARED = new Map<TokenRejection, MeshError>(
  Object.values(TokenRejection).map((reason) => {
    const err = new MeshError("UNAUTHENTICATED", MESSAGES[reason], {
      data: Object.freeze({ reason }),
    });
    err.stack = `MeshError: ${MESSAGES[reason]}`;
    return [reason, Object.freeze(err)];
  }),
);

/** The shared, frozen `UNAUTHENTICATED` error for `reason`: what every refusal returns. */
export function rejection(reason: TokenRejection): MeshError {
  return SHARED.get(reason)!;
}
