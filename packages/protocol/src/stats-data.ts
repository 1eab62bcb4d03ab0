import { isValidErrorCode } from "./error-reply.js";
import { isIntInRange } from "./integers.js";
import { LATENCY_BUCKETS, latencyBucket, latencyBucketLower } from "./latency-histogram.js";

/**
 * What an agent puts in each endpoint's `data` in its `$SRV.STATS` answer (ADR-32 leaves `data`
 * to the service). Counts are cumulative since the agent started, like `num_requests`.
 */
export interface EndpointStatsData {
  /** Handling times: the non-empty buckets as `[lower bound µs, count]`, lower bounds ascending. */
  latency_us: [number, number][];
  /** Failed calls by error code (the `Mesh-Error` code their callers got). */
  errors: Record<string, number>;
}

/** Bounds of {@link EndpointStatsData}, kept by writers and checked by readers. */
export const StatsLimits = {
  /** Distinct error codes counted by name per endpoint; the rest are counted as {@link OTHER_ERRORS}. */
  maxErrorCodes: 32,
} as const;

/** The `errors` key of codes past {@link StatsLimits}. */
export const OTHER_ERRORS = "OTHER";

/** {@link EndpointStatsData} as a reader holds it, checked. */
export interface ParsedStatsData {
  /** Counts indexed by bucket ({@link LATENCY_BUCKETS} of them). */
  readonly latency: Float64Array;
  readonly errors: ReadonlyMap<string, number>;
}

function count(value: unknown): number | undefined {
  return isIntInRange(value, 0, Number.MAX_SAFE_INTEGER) ? value : undefined;
}

/**
 * Checks an endpoint's `data` from a peer: the shape, the bucket bounds of the scheme in
 * ascending order, counts that are non-negative safe integers, codes of the `Mesh-Error` form,
 * and the limits. `undefined` when
 * anything is off: a reader then ignores the endpoint's histogram rather than guess.
 */
export function parseStatsData(value: unknown): ParsedStatsData | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const { latency_us: buckets, errors } = value as Record<string, unknown>;
  if (!Array.isArray(buckets) || buckets.length > LATENCY_BUCKETS) return undefined;
  const latency = new Float64Array(LATENCY_BUCKETS);
  let last = -1;
  for (const pair of buckets) {
    if (!Array.isArray(pair) || pair.length !== 2) return undefined;
    const [lower, n] = pair as unknown[];
    if (typeof lower !== "number") return undefined;
    const index = latencyBucket(lower);
    const c = count(n);
    if (latencyBucketLower(index) !== lower || index <= last || c === undefined) return undefined;
    latency[index] = c;
    last = index;
  }
  if (typeof errors !== "object" || errors === null || Array.isArray(errors)) return undefined;
  const entries = Object.entries(errors);
  if (entries.length > StatsLimits.maxErrorCodes + 1) return undefined;
  const byCode = new Map<string, number>();
  for (const [code, n] of entries) {
    const c = count(n);
    if (!isValidErrorCode(code) || c === undefined) return undefined;
    byCode.set(code, c);
  }
  return { latency, errors: byCode };
}
