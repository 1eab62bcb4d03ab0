import { isAscii } from "node:buffer";
import type { Msg } from "@nats-io/nats-core";

// nats.js keeps a message's bytes and header length on fields its types do not declare.
interface MsgInternals {
  _msg?: { hdr?: number; subject?: Uint8Array; reply?: Uint8Array };
  _rdata?: Uint8Array;
}

/**
 * The subject of a received message as the bytes nats.js parsed, without decoding it to a
 * string; `null` when this nats.js version does not expose them (use `msg.subject` then).
 */
export function rawSubject(msg: Msg): Uint8Array | null {
  const subject = (msg as unknown as MsgInternals)._msg?.subject;
  return subject instanceof Uint8Array ? subject : null;
}

/**
 * The reply subject of a received message as the bytes nats.js parsed, without decoding it;
 * `undefined` when the message has none, `null` when this nats.js version does not expose its
 * message internals (use `msg.reply` then).
 */
export function rawReply(msg: Msg): Uint8Array | undefined | null {
  const m = (msg as unknown as MsgInternals)._msg;
  if (m === undefined || !(m.subject instanceof Uint8Array)) return null;
  const reply = m.reply;
  if (reply === undefined) return undefined;
  return reply instanceof Uint8Array ? reply : null;
}

/**
 * The raw header block of a received message (`NATS/1.0…\r\n\r\n`), without parsing it;
 * `undefined` when the message has no headers. Returns `null` when this nats.js version does
 * not expose its message internals: callers then use `msg.headers`, which is correct but slower.
 */
export function rawHeaderBlock(msg: Msg): Uint8Array | undefined | null {
  const m = msg as unknown as MsgInternals;
  const hdr = m._msg?.hdr;
  if (typeof hdr !== "number" || !(m._rdata instanceof Uint8Array)) return null;
  return hdr > -1 ? m._rdata.subarray(0, hdr) : undefined;
}

/**
 * The bytes of a received message, header block first, and the header block's length: what
 * {@link rawHeaderBlock} returns without making a view of it (a view of a socket buffer costs
 * more than reading the few bytes a hot path needs). `hdr` is -1 when the message has no
 * headers; `null` when this nats.js version does not expose its message internals.
 */
export function rawMessage(msg: Msg): { bytes: Uint8Array; hdr: number } | null {
  const m = msg as unknown as MsgInternals;
  const hdr = m._msg?.hdr;
  const bytes = m._rdata;
  if (typeof hdr !== "number" || !(bytes instanceof Uint8Array)) return null;
  return { bytes, hdr };
}

/**
 * Case-insensitive lookups in a header block without building nats.js' header map: the hot
 * paths need three or four values, and a full parse per message was a measurable share of a
 * call's cost. Values are the first occurrence, trimmed.
 */
export class HeaderBlock {
  readonly #text: string;
  readonly #lower: string;
  readonly #ascii: boolean;

  constructor(block: Uint8Array) {
    this.#ascii = isAscii(block);
    // latin1 maps every byte to one UTF-16 unit, so offsets in the lower-cased copy match.
    this.#text = Buffer.from(block.buffer, block.byteOffset, block.byteLength).toString("latin1");
    this.#lower = this.#text.toLowerCase();
  }

  /** The status code of the first line (`NATS/1.0 503`), or 0 when there is none. */
  get status(): number {
    const eol = this.#text.indexOf("\r\n");
    const first = this.#text.slice(0, eol === -1 ? undefined : eol);
    const code = Number.parseInt(first.slice(9, 12), 10);
    return first.length >= 12 && Number.isInteger(code) ? code : 0;
  }

  /** The first value of `name` (give it lower-case), or `undefined`. */
  get(lowerName: string): string | undefined {
    const key = `\r\n${lowerName}:`;
    const at = this.#lower.indexOf(key);
    if (at === -1) return undefined;
    const start = at + key.length;
    const end = this.#text.indexOf("\r\n", start);
    const raw = this.#text.slice(start, end === -1 ? undefined : end).trim();
    // Header values travel as UTF-8; only non-ASCII values need the slower decode.
    return this.#ascii ? raw : Buffer.from(raw, "latin1").toString("utf8");
  }
}

const CR = 13;
const LF = 10;
const COLON = 58;
const utf8 = new TextDecoder();

/**
 * A few header names looked up in raw header blocks, straight from the bytes: one pass over the
 * block's lines, names compared case-insensitively, the first value of each, trimmed of spaces
 * and tabs and decoded as UTF-8. No copy of the block, no lower-cased copy, no header map, so
 * reading a request's three to five headers costs a scan of ~100 bytes.
 */
export class HeaderNames {
  readonly #names: Uint8Array[];

  /** `names` are header names of ASCII letters, digits and `-`, in any case. */
  constructor(names: readonly string[]) {
    this.#names = names.map((name) => {
      if (!/^[A-Za-z0-9-]+$/.test(name)) throw new TypeError(`invalid header name ${name}`);
      return new TextEncoder().encode(name.toLowerCase());
    });
  }

  /** The first value of each name in `block` (`NATS/1.0…\r\n\r\n`), in the constructor's order. */
  read(block: Uint8Array): (string | undefined)[] {
    const names = this.#names;
    const out: (string | undefined)[] = new Array(names.length).fill(undefined);
    let missing = names.length;
    const end = block.length;
    // The first line is the version (and status); headers follow, one per CRLF-ended line.
    let at = 0;
    while (at < end && !(block[at] === CR && block[at + 1] === LF)) at++;
    while (at < end && missing > 0) {
      const start = at + 2;
      let colon = -1;
      let eol = start;
      for (; eol < end; eol++) {
        const b = block[eol];
        if (b === CR && block[eol + 1] === LF) break;
        if (b === COLON && colon === -1) colon = eol;
      }
      at = eol;
      if (colon <= start) continue;
      for (let n = 0; n < names.length; n++) {
        if (out[n] === undefined && sameName(block, start, colon, names[n]!)) {
          out[n] = trimmedValue(block, colon + 1, eol);
          missing--;
          break;
        }
      }
    }
    return out;
  }
}

/** True when block[start, end) is `lower` (a lower-case name), compared case-insensitively. */
function sameName(block: Uint8Array, start: number, end: number, lower: Uint8Array): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const b = block[start + i]!;
    // Upper-case ASCII letters compare as lower-case; every other byte as it is.
    if ((b >= 65 && b <= 90 ? b | 0x20 : b) !== lower[i]) return false;
  }
  return true;
}

/** The value in [from, end) without leading and trailing spaces and tabs, as UTF-8. */
function trimmedValue(block: Uint8Array, from: number, end: number): string {
  let a = from;
  let b = end;
  while (a < b && (block[a] === 32 || block[a] === 9)) a++;
  while (b > a && (block[b - 1] === 32 || block[b - 1] === 9)) b--;
  return a === b ? "" : utf8.decode(block.subarray(a, b));
}

/**
 * The header block of a successful MessagePack reply. Agents send exactly these bytes; the SDK
 * recognises them by comparison and skips parsing. Any other block is parsed in full.
 */
export const MSGPACK_REPLY_HEADER: Uint8Array = new TextEncoder().encode(
  "NATS/1.0\r\nContent-Type: application/msgpack\r\n\r\n",
);

/** True when two byte ranges are equal. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
