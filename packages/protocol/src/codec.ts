import { Packr } from "msgpackr";
import { MeshError } from "./errors.js";
import { DEFAULT_DECODE_LIMITS, scanPayload } from "./payload-scan.js";

/** Content types of the contract. */
export const ContentType = {
  msgpack: "application/msgpack",
  json: "application/json",
} as const;

/** Name of a codec: `"msgpack"` (the SDK default) or `"json"`. */
export type CodecName = keyof typeof ContentType;

/** Encodes and decodes payloads of one content type. */
export interface Codec {
  readonly name: CodecName;
  readonly contentType: (typeof ContentType)[CodecName];
  /** Encodes a value; `undefined` becomes an empty payload. Throws `BAD_REQUEST` when it cannot. */
  encode(value: unknown): Uint8Array;
  /**
   * Decodes a payload; empty gives `undefined`. Throws `BAD_REQUEST` on anything undecodable,
   * and `PAYLOAD_TOO_LARGE`/`BAD_REQUEST` beyond the default decode limits (100,000 values,
   * 64 levels of nesting).
   */
  decode(data: Uint8Array): unknown;
}

const EMPTY = new Uint8Array(0);

// Plain MessagePack: no record extension, undefined as nil, so any MessagePack decoder reads it.
const packr = new Packr({
  useRecords: false,
  encodeUndefinedAsNil: true,
  mapsAsObjects: true,
  moreTypes: false,
});

const msgpack: Codec = {
  name: "msgpack",
  contentType: ContentType.msgpack,
  encode(value) {
    if (value === undefined) return EMPTY;
    try {
      return packr.pack(value);
    } catch (err) {
      throw new MeshError("BAD_REQUEST", "payload cannot be encoded as MessagePack", {
        cause: err,
      });
    }
  },
  decode(data) {
    return decodeChecked(msgpack, data);
  },
};

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

const json: Codec = {
  name: "json",
  contentType: ContentType.json,
  encode(value) {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (err) {
      throw new MeshError("BAD_REQUEST", "payload cannot be encoded as JSON", { cause: err });
    }
    return text === undefined ? EMPTY : encoder.encode(text);
  },
  decode(data) {
    return decodeChecked(json, data);
  },
};

/** Scans with the default limits, then decodes: what `Codec.decode` does. */
function decodeChecked(codec: Codec, data: Uint8Array): unknown {
  const scanned = scanPayload(codec, data, DEFAULT_DECODE_LIMITS);
  if (scanned instanceof MeshError) throw scanned;
  return decodeScanned(codec, data);
}

/**
 * Decodes a payload that {@link scanPayload} accepted; empty gives `undefined`. Throws
 * `BAD_REQUEST` on anything undecodable. For MessagePack the scan has checked the structure,
 * so one plain `unpack` is all that is left.
 */
export function decodeScanned(codec: Codec, data: Uint8Array): unknown {
  if (data.length === 0) return undefined;
  if (codec.name === "msgpack") {
    try {
      return packr.unpack(data);
    } catch (err) {
      throw new MeshError("BAD_REQUEST", "payload is not valid MessagePack", { cause: err });
    }
  }
  try {
    return JSON.parse(utf8.decode(data));
  } catch (err) {
    throw new MeshError("BAD_REQUEST", "payload is not valid UTF-8 JSON", { cause: err });
  }
}

/** The codec registered under each name. */
export const codecs: Readonly<Record<CodecName, Codec>> = { msgpack, json };

/**
 * The codec for a `Content-Type` value: absent or empty means JSON, so any NATS client can
 * call a service. Parameters (`; charset=utf-8`) are ignored. Returns `undefined` for a type the
 * mesh does not speak; the receiver answers that with `BAD_REQUEST`.
 */
export function codecForContentType(contentType: string | undefined): Codec | undefined {
  if (contentType === undefined || contentType === "") return json;
  if (contentType === ContentType.msgpack) return msgpack;
  if (contentType === ContentType.json) return json;
  const base = contentType.split(";", 1)[0]!.trim().toLowerCase();
  if (base === ContentType.msgpack || base === "application/x-msgpack") return msgpack;
  if (base === ContentType.json) return json;
  return undefined;
}

/**
 * Returns a `PAYLOAD_TOO_LARGE` error when a message of `size` bytes (payload plus headers)
 * exceeds the server's `max_payload`, else `undefined`.
 */
export function checkPayloadSize(size: number, maxPayload: number): MeshError | undefined {
  if (maxPayload > 0 && size > maxPayload) {
    return new MeshError(
      "PAYLOAD_TOO_LARGE",
      `message of ${size} bytes exceeds the server's max_payload of ${maxPayload} bytes`,
      { data: { size, maxPayload } },
    );
  }
  return undefined;
}
