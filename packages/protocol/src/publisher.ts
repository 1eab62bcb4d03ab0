import {
  ClosedConnectionError,
  DrainingConnectionError,
  type MsgHdrs,
  type NatsConnection,
} from "@nats-io/nats-core";
import { checkPayloadSize } from "./codec.js";

/**
 * The part of nats.js' protocol handler (`ProtocolHandler`, exported by
 * `@nats-io/nats-core/internal`) that takes a ready frame: `sendCommand()` queues bytes in the
 * same buffer `publish()` writes to and flushes it the same way.
 */
interface ProtocolInternals {
  sendCommand(cmd: Uint8Array): void;
  noMorePublishing: boolean;
  outBytes: number;
  outMsgs: number;
}

function protocolOf(nc: NatsConnection): ProtocolInternals | undefined {
  const p = (nc as { protocol?: Partial<ProtocolInternals> }).protocol;
  return p !== undefined &&
    typeof p.sendCommand === "function" &&
    typeof p.noMorePublishing === "boolean" &&
    typeof p.outBytes === "number" &&
    typeof p.outMsgs === "number"
    ? (p as ProtocolInternals)
    : undefined;
}

/**
 * Publishes messages framed in one buffer each: the `PUB`/`HPUB` line and the header block
 * written as latin1 in one pass, then the payload. nats.js' `publish()` encodes every protocol
 * line with a `TextEncoder` and queues four buffers per message, which cost more than the rest of
 * a small message's client-side handling; the bytes on the wire are the same.
 *
 * When the connection does not expose nats.js' protocol handler (another client version), every
 * message goes through `publish()` instead: slower, equally correct.
 */
export class Publisher {
  readonly #nc: NatsConnection;
  readonly #protocol: ProtocolInternals | undefined;

  constructor(nc: NatsConnection) {
    this.#nc = nc;
    this.#protocol = protocolOf(nc);
  }

  /** True when messages are framed here rather than by nats.js' `publish()`. */
  get framed(): boolean {
    return this.#protocol !== undefined;
  }

  /**
   * Publishes `data` on `subject`. `reply` is the reply subject, `""` for none; `headers` the
   * whole header block (`NATS/1.0\r\n…\r\n\r\n`), `""` for none, as a string of ASCII
   * characters only or as bytes. Subjects must be valid (callers build them from checked
   * names, or pass the bytes of a received reply subject they checked, which are then never
   * decoded). Throws `PAYLOAD_TOO_LARGE` when headers and payload exceed the server's
   * `max_payload`, and nats.js' connection errors when the connection is closed or draining.
   */
  publish(
    subject: string | Uint8Array,
    reply: string,
    headers: string | Uint8Array,
    data: Uint8Array,
  ): void {
    const hlen = headers.length;
    const size = hlen + data.length;
    const p = this.#admit(size);
    if (p === undefined) {
      this.#viaPublish(
        typeof subject === "string" ? subject : asciiOf(subject),
        reply,
        headers,
        data,
      );
      return;
    }
    const bytesSubject = typeof subject !== "string";
    // Everything after the subject on the protocol line.
    let rest = reply === "" ? "" : ` ${reply}`;
    rest += hlen === 0 ? ` ${size}\r\n` : ` ${hlen} ${size}\r\n`;
    const op = hlen === 0 ? "PUB " : "HPUB ";
    const line = bytesSubject ? rest : `${op}${subject}${rest}`;
    const frame = Buffer.allocUnsafe(
      (bytesSubject ? op.length + subject.length : 0) + line.length + hlen + data.length + 2,
    );
    let at = 0;
    if (bytesSubject) {
      // Short ASCII runs: copied here rather than through a native write each.
      at = asciiInto(frame, at, op);
      frame.set(subject, at);
      at = asciiInto(frame, at + subject.length, line);
    } else {
      at = frame.write(line, 0, "latin1");
    }
    send(p, frame, at, headers, data);
  }

  /**
   * Publishes a request: as {@link Publisher.publish}, with the reply subject given as the bytes
   * of a prefix and a decimal token (`<prefix><token>`), so a caller that numbers its requests
   * neither builds nor encodes a reply subject per message. `subject` is a valid subject as text
   * or as its ASCII bytes; `token` a non-negative safe integer.
   */
  request(
    subject: string | Uint8Array,
    replyPrefix: Uint8Array,
    token: number,
    headers: string | Uint8Array,
    data: Uint8Array,
  ): void {
    if (this.#protocol === undefined) {
      this.publish(subject, `${asciiOf(replyPrefix)}${token}`, headers, data);
      return;
    }
    const hlen = headers.length;
    const size = hlen + data.length;
    const p = this.#admit(size)!;
    const op = hlen === 0 ? "PUB " : "HPUB ";
    const tokenDigits = digitsOf(token);
    const sizeDigits = digitsOf(size);
    // `<op><subject> <prefix><token>[ <hlen>] <size>\r\n<headers><data>\r\n`
    const frame = Buffer.allocUnsafe(
      op.length +
        subject.length +
        1 +
        replyPrefix.length +
        tokenDigits +
        (hlen === 0 ? 0 : 1 + digitsOf(hlen)) +
        1 +
        sizeDigits +
        2 +
        size +
        2,
    );
    let at = asciiInto(frame, 0, op);
    if (typeof subject === "string") {
      at = asciiInto(frame, at, subject);
    } else {
      frame.set(subject, at);
      at += subject.length;
    }
    frame[at++] = 32;
    frame.set(replyPrefix, at);
    at = decimalInto(frame, at + replyPrefix.length, token, tokenDigits);
    if (hlen !== 0) {
      frame[at++] = 32;
      at = decimalInto(frame, at, hlen, digitsOf(hlen));
    }
    frame[at++] = 32;
    at = decimalInto(frame, at, size, sizeDigits);
    frame[at++] = 13;
    frame[at++] = 10;
    send(p, frame, at, headers, data);
  }

  /**
   * The checks before a message of `size` header and payload bytes is framed: throws
   * `PAYLOAD_TOO_LARGE` over the server's `max_payload`, and (when framing here) nats.js'
   * connection errors on a closed or draining connection. Returns the protocol handler to queue
   * the frame on; `undefined` when messages go through `publish()`, which checks the rest itself.
   */
  #admit(size: number): ProtocolInternals | undefined {
    const tooLarge = checkPayloadSize(size, this.#nc.info?.max_payload ?? 0);
    if (tooLarge !== undefined) throw tooLarge;
    const p = this.#protocol;
    if (p === undefined) return undefined;
    if (this.#nc.isClosed()) throw new ClosedConnectionError();
    if (p.noMorePublishing) throw new DrainingConnectionError();
    return p;
  }

  #viaPublish(
    subject: string,
    reply: string,
    headers: string | Uint8Array,
    data: Uint8Array,
  ): void {
    if (headers.length === 0) {
      this.#nc.publish(subject, data, reply === "" ? undefined : { reply });
      return;
    }
    const bytes = typeof headers === "string" ? Buffer.from(headers, "latin1") : headers;
    // nats.js' publish() asks headers only for encode().
    const h = { encode: () => bytes } as unknown as MsgHdrs;
    this.#nc.publish(subject, data, reply === "" ? { headers: h } : { reply, headers: h });
  }
}

/**
 * Writes the header block and the payload into `frame` after its protocol line (which ends at
 * `at`), ends the message and queues it on the connection, counted as `publish()` counts.
 */
function send(
  p: ProtocolInternals,
  frame: Buffer,
  at: number,
  headers: string | Uint8Array,
  data: Uint8Array,
): void {
  let end = at;
  // A text header block is written on its own, not joined to the line: the SDK hands the same
  // (flat) string to many requests, and joining it would copy it into a new string each time.
  if (typeof headers === "string") {
    if (headers.length > 0) end += frame.write(headers, end, "latin1");
  } else {
    frame.set(headers, end);
    end += headers.length;
  }
  frame.set(data, end);
  end += data.length;
  frame[end] = 13;
  frame[end + 1] = 10;
  p.outBytes += headers.length + data.length;
  p.outMsgs++;
  p.sendCommand(frame);
}

/** Bytes of ASCII characters as a string. */
function asciiOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

/** Writes `text` (ASCII) into `frame` at `at`; returns the offset after it. */
function asciiInto(frame: Uint8Array, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) frame[at + i] = text.charCodeAt(i);
  return at + text.length;
}

/** How many decimal digits a non-negative safe integer has. */
function digitsOf(n: number): number {
  let digits = 1;
  for (let limit = 10; n >= limit && digits < 16; limit *= 10) digits++;
  return digits;
}

/** Writes `n` (a non-negative safe integer of `digits` digits) as ASCII decimal at `at`. */
function decimalInto(frame: Uint8Array, at: number, n: number, digits: number): number {
  let rest = n;
  for (let i = at + digits - 1; i >= at; i--) {
    const next = Math.floor(rest / 10);
    frame[i] = 48 + (rest - next * 10);
    rest = next;
  }
  return at + digits;
}
