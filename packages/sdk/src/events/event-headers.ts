import type { MsgHdrs } from "@nats-io/nats-core";
import { type Codec, codecs, Header } from "@natsmesh/protocol";

const PREFIX = {
  msgpack: `NATS/1.0\r\n${Header.ContentType}: ${codecs.msgpack.contentType}\r\n`,
  json: `NATS/1.0\r\n${Header.ContentType}: ${codecs.json.contentType}\r\n`,
} as const;

/** An event's header block, rendered once and reused by every attempt of an emit. */
export interface EventHeaders {
  readonly headers: MsgHdrs;
  /** The block itself. */
  readonly bytes: Uint8Array;
  /** Bytes of the block, for the `max_payload` check. */
  readonly size: number;
}

/**
 * The header block of an event, written as bytes in one pass (as for requests): `Content-Type`,
 * `Nats-Msg-Id`, `traceparent`, `Authorization` when there is a token, then the caller's own
 * (already checked) header lines.
 */
export function eventHeaders(
  codec: Codec,
  id: string,
  trace: string,
  authorization: string | undefined,
  user: string,
): EventHeaders {
  let text = PREFIX[codec.name];
  text += `${Header.MsgId}: ${id}\r\n`;
  // Whole header lines, decided by call-trace.ts.
  text += trace;
  if (authorization !== undefined) text += `${Header.Authorization}: ${authorization}\r\n`;
  text += user;
  text += "\r\n";
  const bytes = Buffer.from(text, "utf8");
  return { headers: { encode: () => bytes } as unknown as MsgHdrs, bytes, size: bytes.length };
}
