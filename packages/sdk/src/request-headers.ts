import { type Codec, codecs, Header } from "@natsmesh/protocol";

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const RESERVED = new Set<string>(
  [
    Header.ContentType,
    Header.Deadline,
    Header.Attempt,
    Header.TraceParent,
    Header.IdempotencyKey,
    Header.Authorization,
    Header.TokenRef,
  ].map((h) => h.toLowerCase()),
);
/** Trace headers a span's context replaces when the SDK traces (see call-trace.ts). */
const TRACE_CONTEXT = new Set([Header.TraceState.toLowerCase(), "baggage"]);

/**
 * Checks caller headers once per call and renders them as header lines. Throws `TypeError` on
 * a name that is not an HTTP token or a value with CR/LF (either would corrupt the header block).
 * Headers the mesh sets itself are left out; `traceparent` is read by the caller separately,
 * and so are `tracestate` and `baggage` when `traced` (the span's context carries them on).
 */
export function renderUserHeaders(
  headers: Record<string, string> | undefined,
  traced = false,
): string {
  if (headers === undefined) return "";
  let out = "";
  for (const name in headers) {
    const value = headers[name];
    if (!TOKEN.test(name)) throw new TypeError(`header name ${JSON.stringify(name)} is not valid`);
    if (typeof value !== "string" || /[\r\n]/.test(value)) {
      throw new TypeError(`header ${name} must be a string without CR or LF`);
    }
    const lower = name.toLowerCase();
    if (!RESERVED.has(lower) && !(traced && TRACE_CONTEXT.has(lower))) {
      out += `${name}: ${value}\r\n`;
    }
  }
  return out;
}

const NON_ASCII = /[\u0080-\uffff]/;

/** True when `text` is ASCII only, so it can be written as latin1 bytes as it is. */
export function isAscii(text: string): boolean {
  return text.length === 0 || !NON_ASCII.test(text);
}

const PREFIX = {
  msgpack: `NATS/1.0\r\n${Header.ContentType}: ${codecs.msgpack.contentType}\r\n`,
  json: `NATS/1.0\r\n${Header.ContentType}: ${codecs.json.contentType}\r\n`,
} as const;

/**
 * The header block of one attempt, as text: content type and deadline, then only what the call
 * has (attempt from the second on, trace, idempotency key, the token's line, caller lines). Written in one
 * pass and handed to the publisher with the protocol line, so no header map, no `encode()` and no
 * separate byte buffer are made per request (see docs/benchmarks.md).
 */
export function requestHeaders(
  codec: Codec,
  deadline: number,
  attempt: number,
  trace: string,
  idempotencyKey: string | undefined,
  authLine: string,
  user: string,
): string {
  let text = `${PREFIX[codec.name]}${Header.Deadline}: ${deadline}\r\n`;
  // Absent means 1: the first attempt, which is nearly every call, sends one line less.
  if (attempt > 1) text += `${Header.Attempt}: ${attempt}\r\n`;
  // Whole header lines, decided by call-trace.ts: none, or `traceparent` and maybe more.
  text += trace;
  if (idempotencyKey !== undefined) text += `${Header.IdempotencyKey}: ${idempotencyKey}\r\n`;
  return `${text}${authLine}${user}\r\n`;
}
