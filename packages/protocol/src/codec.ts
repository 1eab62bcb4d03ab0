import { C1, Packr } from "msgpackr";
import { MeshError } from "./errors.js";

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
  /** Decodes a payload; empty gives `undefined`. Throws `BAD_REQUEST` on anything undecodable. */
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
    if (data.length === 0) return undefined;
    try {
      // One value must span the whole payload: trailing bytes mean a corrupt or foreign message.
      const values = packr.unpackMultiple(data) as unknown[];
      if (values.length !== 1) throw new Error(`${values.length} values in one payload`);
      // msgpackr decodes the never-used byte 0xC1 to a marker object instead of failing. The
      // byte scan is native and cheap; the walk runs only when the byte occurs at all.
      if (data.indexOf(0xc1) !== -1 && containsNeverUsed(values[0])) {
        throw new Error("0xC1 is not a MessagePack type");
      }
      return values[0];
    } catch (err) {
      throw new MeshError("BAD_REQUEST", "payload is not valid MessagePack", { cause: err });
    }
  },
};

function containsNeverUsed(value: unknown): boolean {
  if (value === C1) return true;
  if (value === null || typeof value !== "object" || ArrayBuffer.isView(value)) return false;
  const items = Array.isArray(value) ? value : Object.values(value);
  for (const item of items) if (containsNeverUsed(item)) return true;
  return false;
}

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
    if (data.length === 0) return undefined;
    try {
      return JSON.parse(utf8.decode(data));
    } catch (err) {
      throw new MeshError("BAD_REQUEST", "payload is not valid UTF-8 JSON", { cause: err });
    }
  },
};

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
