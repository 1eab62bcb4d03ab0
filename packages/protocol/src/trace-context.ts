import { randomBytes } from "node:crypto";

/** A W3C `traceparent` taken apart (version 00). */
export interface TraceParent {
  traceId: string;
  parentId: string;
  flags: string;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);

/**
 * Parses a `traceparent` header. Following W3C Trace Context, an invalid value is treated as
 * absent (`undefined`), so the receiver starts a new trace instead of refusing the call.
 */
export function parseTraceparent(value: string | undefined): TraceParent | undefined {
  if (value === undefined || value.length !== 55) return undefined;
  const m = TRACEPARENT.exec(value);
  if (m === null || m[1] === ZERO_TRACE || m[2] === ZERO_SPAN) return undefined;
  return { traceId: m[1]!, parentId: m[2]!, flags: m[3]! };
}

// Random ids come from a pooled buffer: one crypto call per 8192 ids instead of one per request.
const POOL_SPANS = 8192;
let pool = Buffer.alloc(0);
let offset = 0;

function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    pool = randomBytes(POOL_SPANS * 8);
    offset = 0;
  }
  const hex = pool.toString("hex", offset, offset + bytes);
  offset += bytes;
  return hex;
}

/**
 * Returns a `traceparent` for an outgoing call: a new span in the trace of `parent` when it is
 * a valid `traceparent`, else a new sampled trace.
 */
export function childTraceparent(parent?: string): string {
  const p = parseTraceparent(parent);
  const traceId = p?.traceId ?? randomHex(16);
  return `00-${traceId}-${randomHex(8)}-${p?.flags ?? "01"}`;
}

/** Longest `tracestate` passed on whole (W3C Trace Context: propagate at least 512 characters). */
export const MAX_TRACESTATE_LENGTH = 512;
/** Longest list member kept when a `tracestate` is cut down (W3C: larger ones go first). */
const MAX_TRACESTATE_MEMBER = 128;
/** Most list members a `tracestate` carries (W3C). */
const MAX_TRACESTATE_MEMBERS = 32;

/**
 * A received `tracestate` as it may be passed on: as it is up to {@link MAX_TRACESTATE_LENGTH}
 * characters; a longer one cut down the way W3C Trace Context says (members over 128 characters
 * dropped, then members from the right until the rest fits, at most 32), so a peer cannot make
 * every nested call carry a header of its size. `undefined` when nothing fits.
 */
export function boundedTracestate(value: string): string | undefined {
  if (value.length <= MAX_TRACESTATE_LENGTH) return value;
  let out = "";
  let members = 0;
  let from = 0;
  while (from < value.length && members < MAX_TRACESTATE_MEMBERS) {
    let to = value.indexOf(",", from);
    if (to === -1) to = value.length;
    const member = value.slice(from, to).trim();
    from = to + 1;
    if (member === "" || member.length > MAX_TRACESTATE_MEMBER) continue;
    if (out.length + (out === "" ? 0 : 1) + member.length > MAX_TRACESTATE_LENGTH) break;
    out = out === "" ? member : `${out},${member}`;
    members++;
  }
  return out === "" ? undefined : out;
}
