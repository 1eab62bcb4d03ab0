import type { TokenRejection } from "./rejections.js";

/** What {@link precheck} compares a token with. */
export interface PrecheckRules {
  /** Algorithms the verifier allows. */
  algorithms: readonly string[];
  /** Whether a `kid` names a key of the current key set. */
  knownKid(kid: string): boolean;
  clockToleranceSec: number;
  maxLifetimeSec: number;
}

const B64URL = /^[A-Za-z0-9_-]+$/;
const B64URL_OR_EMPTY = /^[A-Za-z0-9_-]*$/;

function decodeObject(part: string): Record<string, unknown> | undefined {
  if (!B64URL.test(part)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

const isTime = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/**
 * Refuses, without any cryptography, a token that could never verify: not three base64url
 * parts of JSON, an algorithm or `kid` the verifier does not know, or claims that are missing,
 * expired, not valid yet or that give the token a longer life than `maxLifetimeSec` (`exp - iat`,
 * or `exp - now` without `iat`). Returns the reason, or `undefined` when only the signature
 * check can tell. Reads the unverified token only ever to refuse it, never to accept it.
 */
export function precheck(
  token: string,
  rules: PrecheckRules,
  nowSec: number,
): TokenRejection | undefined {
  const first = token.indexOf(".");
  const second = token.indexOf(".", first + 1);
  if (first <= 0 || second <= first + 1 || token.indexOf(".", second + 1) !== -1) {
    return "malformed";
  }
  if (!B64URL_OR_EMPTY.test(token.slice(second + 1))) return "malformed";
  const header = decodeObject(token.slice(0, first));
  const claims = decodeObject(token.slice(first + 1, second));
  if (header === undefined || claims === undefined) return "malformed";

  const { alg, kid } = header;
  if (typeof alg !== "string" || !rules.algorithms.includes(alg)) return "algorithm";
  if (kid !== undefined && typeof kid !== "string") return "malformed";
  if (alg !== "HS256" && kid !== undefined && !rules.knownKid(kid)) return "unknown_kid";

  const { exp, iat, nbf, sub, scope } = claims;
  if (
    !isTime(exp) ||
    typeof sub !== "string" ||
    (scope !== undefined && typeof scope !== "string")
  ) {
    return "claims";
  }
  if ((iat !== undefined && !isTime(iat)) || (nbf !== undefined && !isTime(nbf))) return "claims";
  const tolerance = rules.clockToleranceSec;
  if (exp <= nowSec - tolerance) return "expired";
  if ((nbf ?? Number.NEGATIVE_INFINITY) > nowSec + tolerance) return "not_yet_valid";
  if ((iat ?? Number.NEGATIVE_INFINITY) > nowSec + tolerance) return "not_yet_valid";
  const lifetime = iat === undefined ? exp - nowSec - tolerance : exp - iat;
  if (lifetime > rules.maxLifetimeSec) return "lifetime";
  return undefined;
}
