import { createHash } from "node:crypto";

/** Characters of a token reference: 128 bits in base64url. */
export const TOKEN_REF_LENGTH = 22;

/**
 * The reference of a token, sent as `Mesh-Token-Ref` instead of the token once an agent has
 * verified the token itself: the first 128 bits of the token's SHA-256, in base64url (22
 * characters). It cannot be turned back into the token, and an agent accepts it only for a token
 * it verified and still holds (docs/security.md, "Token references").
 */
export function tokenRef(token: string): string {
  return createHash("sha256").update(token).digest().toString("base64url", 0, 16);
}
