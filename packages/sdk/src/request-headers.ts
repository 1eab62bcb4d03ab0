import { type Codec, codecs, Header } from "@natsmesh/protocol";
import { parseTraceparent } from "@natsmesh/protocol/internal";

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
const TRACESTATE = Header.TraceState.toLowerCase();
const BAGGAGE = "baggage";

/**
 * Checks caller headers once per call and renders them as header lines. Throws `TypeError` on
 * a name that is not an HTTP token or a value with CR/LF (either would corrupt the header block).
 * Headers the mesh sets itself are left out; `traceparent` is read by the caller separately,
 * and so are `tracestate` and `baggage` when `traced` (the span's context carries them on).
 * Untraced, `tracestate` goes out only with a valid `traceparent` among the headers: W3C Trace
 * Context discards a `tracestate` that comes without one, since its trace starts anew.
 */
export function renderUserHeaders(
  headers: Record<string, string> | undefined,
  traced = false,
): string {
  if (headers === undefined) return "";
  const parent = headers[Header.TraceParent];
  const dropState = traced || parent === undefined || parseTraceparent(parent) === undefined;
  let out = "";
  for (const name in headers) {
    const value = headers[name];
    if (!TOKEN.test(name)) throw new TypeError(`header name ${JSON.stringify(name)} is not valid`);
    if (typeof value !== "string" || /[\r\n]/.test(value)) {
      throw new TypeError(`header ${name} must be a string without CR or LF`);
    }
    const lower = name.toLowerCase();
    if (RESERVED.has(lower)) continue;
    if (lower === TRACESTATE ? dropState : traced && lower === BAGGAGE) continue;
    out += `${name}: ${value}\r\n`;
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
 * The arguments and result of the last {@link requestHeaders} call. Calls made within the same
 * millisecond with the same timeout, token and options have the same header block, so a busy
 * client builds (and converts its deadline, a 13-digit number, to text) about once per
 * millisecond instead of once per call, and the publisher writes a string that is already flat.
 */
const last = {
  codec: undefined as Codec | undefined,
  deadline: 0,
  attempt: 0,
  trace: "",
  idempotencyKey: undefined as string | undefined,
  authLine: "",
  user: "",
  text: "",
};

/**
 * The header block of one attempt, as text: content type and deadline, then only what the call
 * has (attempt from the second on, trace, idempotency key, the token's line, caller lines).
 * Handed to the publisher as it is, so no header map, no `encode()` and no separate byte buffer
 * are made per request (see docs/benchmarks.md).
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
  if (
    deadline === last.deadline &&
    codec === last.codec &&
    attempt === last.attempt &&
    trace === last.trace &&
    idempotencyKey === last.idempotencyKey &&
    authLine === last.authLine &&
    user === last.user
  ) {
    return last.text;
  }
  let text = `${PREFIX[codec.name]}${Header.Deadline}: ${deadline}\r\n`;
  // Absent means 1: the first attempt, which is nearly every call, sends one line less.
  if (attempt > 1) text += `${Header.Attempt}: ${attempt}\r\n`;
  // Whole header lines, decided by call-trace.ts: none, or `traceparent` and maybe more.
  text += trace;
  if (idempotencyKey !== undefined) text += `${Header.IdempotencyKey}: ${idempotencyKey}\r\n`;
  text = `${text}${authLine}${user}\r\n`;
  last.codec = codec;
  last.deadline = deadline;
  last.attempt = attempt;
  last.trace = trace;
  last.idempotencyKey = idempotencyKey;
  last.authLine = authLine;
  last.user = user;
  last.text = text;
  return text;
}
