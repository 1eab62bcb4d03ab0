import type { MsgHdrs } from "@nats-io/nats-core";
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
  ].map((h) => h.toLowerCase()),
);

/**
 * Checks caller headers once per call and renders them as header lines. Throws `TypeError` on
 * a name that is not an HTTP token or a value with CR/LF (either would corrupt the header block).
 * Headers the mesh sets itself are left out; `traceparent` is read by the caller separately.
 */
export function renderUserHeaders(headers: Record<string, string> | undefined): string {
  if (headers === undefined) return "";
  let out = "";
  for (const name in headers) {
    const value = headers[name];
    if (!TOKEN.test(name)) throw new TypeError(`header name ${JSON.stringify(name)} is not valid`);
    if (typeof value !== "string" || /[\r\n]/.test(value)) {
      throw new TypeError(`header ${name} must be a string without CR or LF`);
    }
    if (!RESERVED.has(name.toLowerCase())) out += `${name}: ${value}\r\n`;
  }
  return out;
}

const PREFIX = {
  msgpack: `NATS/1.0\r\n${Header.ContentType}: ${codecs.msgpack.contentType}\r\n`,
  json: `NATS/1.0\r\n${Header.ContentType}: ${codecs.json.contentType}\r\n`,
} as const;

/**
 * The header block of one attempt, written as bytes in one pass. nats.js' `publish()` asks its
 * headers only for `encode()`; building a `MsgHdrs` map per request and encoding it was a fifth
 * of the SDK's cost (see docs/benchmarks.md).
 */
export function requestHeaders(
  codec: Codec,
  deadline: number,
  attempt: number,
  traceparent: string,
  idempotencyKey: string | undefined,
  authorization: string | undefined,
  user: string,
): MsgHdrs {
  let text = PREFIX[codec.name];
  text += `${Header.Deadline}: ${deadline}\r\n`;
  // Absent means 1: the first attempt, which is nearly every call, sends one line less.
  if (attempt > 1) text += `${Header.Attempt}: ${attempt}\r\n`;
  text += `${Header.TraceParent}: ${traceparent}\r\n`;
  if (idempotencyKey !== undefined) text += `${Header.IdempotencyKey}: ${idempotencyKey}\r\n`;
  if (authorization !== undefined) text += `${Header.Authorization}: ${authorization}\r\n`;
  text += user;
  text += "\r\n";
  const bytes = Buffer.from(text, "utf8");
  return { encode: () => bytes } as unknown as MsgHdrs;
}
