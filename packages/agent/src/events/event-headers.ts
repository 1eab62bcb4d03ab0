import { Match, type Msg, type MsgHdrs } from "@nats-io/nats-core";
import { HeaderBlock, rawHeaderBlock } from "@natsmesh/protocol/internal";

/** Reads header values of a received event by lower-case name, first value, trimmed. */
export type HeaderReader = (lowerName: string) => string | undefined;

const NONE: HeaderReader = () => undefined;

/**
 * A reader of `msg`'s headers that scans the raw header block (as the request dispatcher does)
 * instead of building nats.js' header map for every event; with a nats.js that hides its
 * internals, the map, looked up case-insensitively.
 */
export function eventHeaders(msg: Msg): HeaderReader {
  const raw = rawHeaderBlock(msg);
  if (raw === undefined) return NONE;
  if (raw !== null) {
    const block = new HeaderBlock(raw);
    return (name) => block.get(name);
  }
  return headersOf(msg);
}

/** A reader over a message's parsed header map, case-insensitive. */
export function headersOf(m: { readonly headers?: MsgHdrs | undefined }): HeaderReader {
  const h = m.headers;
  if (h === undefined) return NONE;
  return (name) => h.get(name, Match.IgnoreCase) || undefined;
}

/** The core message under a JetStream message (nats.js keeps it as `msg`). */
export function coreMessage(m: { headers: unknown }): Msg | undefined {
  const msg = (m as { msg?: Msg }).msg;
  return msg !== undefined && typeof msg === "object" && "subject" in msg ? msg : undefined;
}
