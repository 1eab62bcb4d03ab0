import { isUtf8 } from "node:buffer";
import type { Codec } from "./codec.js";
import { MeshError } from "./errors.js";

/** Bounds on what decoding one payload may build. */
export interface DecodeLimits {
  /** Most values in the payload, counted across every level of nesting (map keys included). */
  readonly maxElements: number;
  /** Most arrays and maps nested inside each other. */
  readonly maxDepth: number;
}

/**
 * Safe defaults: 100,000 values (a few MB once decoded) nested at most 64 deep. A plain
 * MessagePack or JSON payload of 1 MiB decoded into a million empty objects otherwise.
 */
export const DEFAULT_DECODE_LIMITS: DecodeLimits = Object.freeze({
  maxElements: 100_000,
  maxDepth: 64,
});

/** Extension type of the MessagePack timestamp (−1): the only extension the mesh decodes. */
const TIMESTAMP = 0xff;

// Container counts still to read, per level: a scan is synchronous, so one buffer serves all.
let stack = new Float64Array(DEFAULT_DECODE_LIMITS.maxDepth + 1);

function badRequest(message: string): MeshError {
  return new MeshError("BAD_REQUEST", `payload is not valid MessagePack: ${message}`);
}

function tooMany(limits: DecodeLimits): MeshError {
  return new MeshError(
    "PAYLOAD_TOO_LARGE",
    `payload holds more than ${limits.maxElements} values`,
    { data: { maxElements: limits.maxElements } },
  );
}

function tooDeep(limits: DecodeLimits): MeshError {
  return new MeshError("BAD_REQUEST", `payload nests deeper than ${limits.maxDepth} levels`, {
    data: { maxDepth: limits.maxDepth },
  });
}

/**
 * Walks a payload's structure without decoding it and returns how many values it holds, or the
 * error to answer: `PAYLOAD_TOO_LARGE` beyond `maxElements`, `BAD_REQUEST` beyond `maxDepth` and
 * for anything a decoder must not accept. For MessagePack that is exact and complete (one value
 * spanning the payload, no `0xC1`, strings valid UTF-8, no extension but the timestamp), so
 * {@link decodeScanned} needs no checks of its own. For JSON it counts `[`, `{`, `,` and `:`
 * outside strings (an upper bound of the values, keys included) and the nesting; `JSON.parse`
 * checks the rest. An empty payload holds no value: 0.
 */
export function scanPayload(
  codec: Codec,
  data: Uint8Array,
  limits: DecodeLimits,
): number | MeshError {
  if (data.length === 0) return 0;
  return codec.name === "msgpack" ? scanMsgpack(data, limits) : scanJson(data, limits);
}

function scanMsgpack(data: Uint8Array, limits: DecodeLimits): number | MeshError {
  const end = data.length;
  const { maxElements, maxDepth } = limits;
  if (stack.length <= maxDepth) stack = new Float64Array(maxDepth + 1);
  let pos = 0;
  let depth = 0;
  let elements = 0;
  // Values still to read at the current level; the top level holds exactly one.
  let remaining = 1;
  for (;;) {
    if (remaining === 0) {
      if (depth === 0) break;
      remaining = stack[--depth]!;
      continue;
    }
    if (pos >= end) return badRequest("truncated");
    remaining--;
    if (++elements > maxElements) return tooMany(limits);
    const b = data[pos++]!;
    // positive and negative fixint, nil, false, true
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) continue;
    let items = -1;
    let length = -1;
    let str = false;
    if (b <= 0x8f) items = (b & 0x0f) * 2;
    else if (b <= 0x9f) items = b & 0x0f;
    else if (b <= 0xbf) {
      length = b & 0x1f;
      str = true;
    } else {
      const left = end - pos;
      switch (b) {
        case 0xc1:
          return badRequest("0xC1 is not a MessagePack type");
        case 0xc4: // bin 8
        case 0xd9: // str 8
          if (left < 1) return badRequest("truncated");
          length = data[pos++]!;
          str = b === 0xd9;
          break;
        case 0xc5: // bin 16
        case 0xda: // str 16
          if (left < 2) return badRequest("truncated");
          length = (data[pos]! << 8) | data[pos + 1]!;
          pos += 2;
          str = b === 0xda;
          break;
        case 0xc6: // bin 32
        case 0xdb: // str 32
          if (left < 4) return badRequest("truncated");
          length = uint32(data, pos);
          pos += 4;
          str = b === 0xdb;
          break;
        case 0xc7: // ext 8
        case 0xc8: // ext 16
        case 0xc9: {
          // ext 32
          const size = b === 0xc7 ? 1 : b === 0xc8 ? 2 : 4;
          if (left < size + 1) return badRequest("truncated");
          length =
            size === 1
              ? data[pos]!
              : size === 2
                ? (data[pos]! << 8) | data[pos + 1]!
                : uint32(data, pos);
          pos += size;
          const ext = extension(data[pos++]!, length);
          if (ext !== undefined) return ext;
          break;
        }
        case 0xca: // float 32
          length = 4;
          break;
        case 0xcb: // float 64
          length = 8;
          break;
        case 0xcc: // uint 8
        case 0xd0: // int 8
          length = 1;
          break;
        case 0xcd:
        case 0xd1:
          length = 2;
          break;
        case 0xce:
        case 0xd2:
          length = 4;
          break;
        case 0xcf:
        case 0xd3:
          length = 8;
          break;
        case 0xd4: // fixext 1, 2, 4, 8, 16
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8: {
          if (left < 1) return badRequest("truncated");
          length = 1 << (b - 0xd4);
          const ext = extension(data[pos++]!, length);
          if (ext !== undefined) return ext;
          break;
        }
        case 0xdc: // array 16
        case 0xde: // map 16
          if (left < 2) return badRequest("truncated");
          items = (data[pos]! << 8) | data[pos + 1]!;
          pos += 2;
          if (b === 0xde) items *= 2;
          break;
        default:
          // 0xdd array 32, 0xdf map 32
          if (left < 4) return badRequest("truncated");
          items = uint32(data, pos);
          pos += 4;
          if (b === 0xdf) items *= 2;
      }
    }
    if (length >= 0) {
      if (length > end - pos) return badRequest("truncated");
      if (str && !utf8(data, pos, length)) return badRequest("a string is not valid UTF-8");
      pos += length;
    } else if (items > 0) {
      // Every value takes at least a byte: a count the rest cannot hold is a lie, refused at once.
      if (items > end - pos) return badRequest("truncated");
      if (elements + items > maxElements) return tooMany(limits);
      if (depth >= maxDepth) return tooDeep(limits);
      stack[depth++] = remaining;
      remaining = items;
    }
  }
  if (pos !== end) return badRequest("more than one value in the payload");
  return elements;
}

function uint32(data: Uint8Array, pos: number): number {
  return data[pos]! * 0x1000000 + ((data[pos + 1]! << 16) | (data[pos + 2]! << 8) | data[pos + 3]!);
}

/** Only the timestamp extension (type −1, 4, 8 or 12 bytes) is plain MessagePack the mesh reads. */
function extension(type: number, length: number): MeshError | undefined {
  if (type === TIMESTAMP && (length === 4 || length === 8 || length === 12)) return undefined;
  return type === TIMESTAMP
    ? badRequest(`a timestamp of ${length} bytes`)
    : badRequest(`extension type ${type > 127 ? type - 256 : type} is not supported`);
}

/** ASCII is checked here, byte by byte; anything else by Node's native validator. */
function utf8(data: Uint8Array, pos: number, length: number): boolean {
  const end = pos + length;
  for (let i = pos; i < end; i++) {
    if (data[i]! >= 0x80) return isUtf8(data.subarray(i, end));
  }
  return true;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function scanJson(data: Uint8Array, limits: DecodeLimits): number | MeshError {
  const { maxElements, maxDepth } = limits;
  let elements = 1;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < data.length; i++) {
    const c = data[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    switch (c) {
      case QUOTE:
        inString = true;
        break;
      case 0x5b: // [
      case 0x7b: // {
        if (++depth > maxDepth) return tooDeep(limits);
        if (++elements > maxElements) return tooMany(limits);
        break;
      case 0x5d: // ]
      case 0x7d: // }
        depth--;
        break;
      case 0x2c: // ,
      case 0x3a: // :
        if (++elements > maxElements) return tooMany(limits);
        break;
    }
  }
  return elements;
}
