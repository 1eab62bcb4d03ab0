import type { Msg } from "@nats-io/nats-core";
import {
  type Codec,
  ContentType,
  codecForContentType,
  codecs,
  Header,
  type MeshError,
} from "@natsmesh/protocol";
import {
  HeaderNames,
  parseAttempt,
  parseDeadline,
  rawHeaderBlock,
  rawMessage,
} from "@natsmesh/protocol/internal";

/** What the dispatcher needs from a request's headers, parsed. */
export interface RequestFields {
  /** The codec `Content-Type` names; `undefined` for a type the mesh does not speak. */
  codec: Codec | undefined;
  /** `Mesh-Deadline`: `undefined` when absent, the `BAD_REQUEST` to answer when invalid. */
  deadline: number | undefined | MeshError;
  /** `Mesh-Attempt` (1 when absent), or the `BAD_REQUEST` to answer. */
  attempt: number | MeshError;
  authorization: string | undefined;
  tokenRef: string | undefined;
}

const NO_HEADERS: RequestFields = Object.freeze({
  codec: codecs.json,
  deadline: undefined,
  attempt: 1,
  authorization: undefined,
  tokenRef: undefined,
});

const WITHOUT_AUTH = new HeaderNames([Header.ContentType, Header.Deadline, Header.Attempt]);
const WITH_AUTH = new HeaderNames([
  Header.ContentType,
  Header.Deadline,
  Header.Attempt,
  Header.Authorization,
  Header.TokenRef,
]);

/**
 * The request headers the dispatcher needs, read from the raw header block's bytes without
 * building nats.js' header map; the token headers only when tokens are checked. The block the
 * SDK writes is recognised by its exact layout and read without creating a string but the token
 * reference; any other block is read by name.
 */
export function requestFields(msg: Msg, withAuth: boolean): RequestFields {
  // The SDK's layout is read in place, without a view of the block.
  const whole = rawMessage(msg);
  if (whole !== null && whole.hdr > 0) {
    const sdk = sdkLayout(whole.bytes, whole.hdr, withAuth);
    if (sdk !== undefined) return sdk;
  }
  const raw = rawHeaderBlock(msg);
  if (raw === undefined) return NO_HEADERS;
  if (raw === null) {
    const h = msg.headers;
    return parsed(
      h?.get(Header.ContentType) || undefined,
      h?.get(Header.Deadline) || undefined,
      h?.get(Header.Attempt) || undefined,
      withAuth ? h?.get(Header.Authorization) || undefined : undefined,
      withAuth ? h?.get(Header.TokenRef) || undefined : undefined,
    );
  }
  const [contentType, deadline, attempt, authorization, tokenRef] = (
    withAuth ? WITH_AUTH : WITHOUT_AUTH
  ).read(raw);
  return parsed(contentType, deadline, attempt, authorization, tokenRef);
}

function parsed(
  contentType: string | undefined,
  deadline: string | undefined,
  attempt: string | undefined,
  authorization: string | undefined,
  tokenRef: string | undefined,
): RequestFields {
  return {
    codec: codecForContentType(contentType),
    deadline: parseDeadline(deadline),
    attempt: parseAttempt(attempt),
    authorization,
    tokenRef,
  };
}

const ascii = (text: string) => new TextEncoder().encode(text);
const START = {
  msgpack: ascii(
    `NATS/1.0\r\n${Header.ContentType}: ${ContentType.msgpack}\r\n${Header.Deadline}: `,
  ),
  json: ascii(`NATS/1.0\r\n${Header.ContentType}: ${ContentType.json}\r\n${Header.Deadline}: `),
};
const TOKEN_REF_LINE = ascii(`${Header.TokenRef}: `);
const CR = 13;
const LF = 10;
/** Digits of a deadline read here; longer ones (beyond 2^53 from 16 on) go to parseDeadline. */
const MAX_DIGITS = 15;
const utf8 = new TextDecoder();

/** True when `raw[at, end)` starts with `prefix`. */
function startsWith(raw: Uint8Array, end: number, prefix: Uint8Array, at: number): boolean {
  const n = prefix.length;
  if (end - at < n) return false;
  for (let i = 0; i < n; i++) if (raw[at + i] !== prefix[i]) return false;
  return true;
}

/**
 * The reference last read and its bytes: a client sends the same reference on every call, so
 * comparing 22 bytes replaces making the same string again per request.
 */
let lastRef = "";
let lastRefBytes = new Uint8Array(0);

/** The base64url characters of `raw[from, to)` as a string. */
function refString(raw: Uint8Array, from: number, to: number): string {
  const n = to - from;
  if (n === lastRefBytes.length) {
    let i = 0;
    while (i < n && raw[from + i] === lastRefBytes[i]) i++;
    if (i === n) return lastRef;
  }
  lastRefBytes = raw.slice(from, to);
  lastRef = utf8.decode(lastRefBytes);
  return lastRef;
}

/** True when `raw[at, end)` starts with CRLF. */
function crlfAt(raw: Uint8Array, end: number, at: number): boolean {
  return at + 1 < end && raw[at] === CR && raw[at + 1] === LF;
}

function isBase64Url(b: number): boolean {
  return (
    (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b === 45 || b === 95
  );
}

/**
 * The fields of a block in the SDK's exact layout: the version line, `Content-Type`
 * (MessagePack or JSON), `Mesh-Deadline` of 1–15 digits, then either the end or (with tokens
 * checked) a `Mesh-Token-Ref` line of base64url and the end. `undefined` for anything else,
 * which the general reader then reads: this is a shortcut, never a second set of rules.
 */
function sdkLayout(raw: Uint8Array, end: number, withAuth: boolean): RequestFields | undefined {
  let codec: Codec;
  let at: number;
  if (startsWith(raw, end, START.msgpack, 0)) {
    codec = codecs.msgpack;
    at = START.msgpack.length;
  } else if (startsWith(raw, end, START.json, 0)) {
    codec = codecs.json;
    at = START.json.length;
  } else {
    return undefined;
  }
  const digits = at;
  let deadline = 0;
  for (; at < end && at - digits < MAX_DIGITS; at++) {
    const d = raw[at]! - 48;
    if (d < 0 || d > 9) break;
    deadline = deadline * 10 + d;
  }
  // Zero is refused by parseDeadline, with its own message: leave it to it.
  if (deadline === 0 || !crlfAt(raw, end, at)) return undefined;
  at += 2;
  let tokenRef: string | undefined;
  if (withAuth && startsWith(raw, end, TOKEN_REF_LINE, at)) {
    const from = at + TOKEN_REF_LINE.length;
    at = from;
    while (at < end && isBase64Url(raw[at]!)) at++;
    if (at === from || !crlfAt(raw, end, at)) return undefined;
    tokenRef = refString(raw, from, at);
    at += 2;
  }
  if (at + 2 !== end || !crlfAt(raw, end, at)) return undefined;
  return { codec, deadline, attempt: 1, authorization: undefined, tokenRef };
}
