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
