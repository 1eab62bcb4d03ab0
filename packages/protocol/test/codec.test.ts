import { randomBytes } from "node:crypto";
import {
  ContentType,
  codecForContentType,
  codecs,
  isMeshError,
  MeshError,
} from "@natsmesh/protocol";
import { checkPayloadSize } from "@natsmesh/protocol/internal";
import { Unpackr } from "msgpackr";
import { describe, expect, it } from "vitest";

const { msgpack, json } = codecs;

function decodeError(run: () => unknown): MeshError {
  try {
    run();
  } catch (err) {
    if (err instanceof MeshError) return err;
    throw new Error(`expected a MeshError, got ${String(err)}`);
  }
  throw new Error("expected decoding to fail");
}

describe("codec selection", () => {
  it("treats an absent or empty content type as JSON", () => {
    expect(codecForContentType(undefined)).toBe(json);
    expect(codecForContentType("")).toBe(json);
  });

  it("reads content types with parameters and case", () => {
    expect(codecForContentType(ContentType.msgpack)).toBe(msgpack);
    expect(codecForContentType("Application/JSON; charset=utf-8")).toBe(json);
    expect(codecForContentType("application/x-msgpack")).toBe(msgpack);
  });

  it("returns undefined for a content type the mesh does not speak", () => {
    expect(codecForContentType("text/plain")).toBeUndefined();
    expect(codecForContentType("application/protobuf")).toBeUndefined();
  });
});

describe("msgpack", () => {
  it("round-trips nested values and binary data", () => {
    const value = {
      a: 1,
      b: [1, "two", { c: null }],
      big: 2 ** 40,
      neg: -5.5,
      bin: new Uint8Array([0, 1, 255]),
    };
    const out = msgpack.decode(msgpack.encode(value)) as typeof value;
    expect(out.a).toBe(1);
    expect(out.b).toEqual([1, "two", { c: null }]);
    expect(out.big).toBe(2 ** 40);
    expect(out.neg).toBe(-5.5);
    expect(Uint8Array.from(out.bin)).toEqual(new Uint8Array([0, 1, 255]));
  });

  it("writes plain MessagePack that a decoder without records reads", () => {
    const plain = new Unpackr({ useRecords: false, mapsAsObjects: true });
    const value = [
      { id: 1, name: "x" },
      { id: 2, name: "y" },
    ];
    // The first byte is a plain fixarray, not msgpackr's record extension.
    const bytes = msgpack.encode(value);
    expect(bytes[0]).toBe(0x92);
    expect(plain.unpack(bytes)).toEqual(value);
  });

  it("encodes undefined as an empty payload and nested undefined as nil", () => {
    expect(msgpack.encode(undefined)).toHaveLength(0);
    expect(msgpack.decode(new Uint8Array(0))).toBeUndefined();
    expect(msgpack.decode(msgpack.encode({ u: undefined }))).toEqual({ u: null });
  });

  it("refuses truncated input with BAD_REQUEST", () => {
    const bytes = msgpack.encode({ hello: "world", list: [1, 2, 3] });
    for (let n = 1; n < bytes.length; n++) {
      expect(decodeError(() => msgpack.decode(bytes.subarray(0, n))).code).toBe("BAD_REQUEST");
    }
  });

  it("refuses trailing bytes, the never-used byte and unknown extensions", () => {
    const bytes = msgpack.encode({ a: 1 });
    expect(decodeError(() => msgpack.decode(Buffer.concat([bytes, bytes]))).code).toBe(
      "BAD_REQUEST",
    );
    expect(decodeError(() => msgpack.decode(new Uint8Array([0xc1]))).code).toBe("BAD_REQUEST");
    expect(decodeError(() => msgpack.decode(new Uint8Array([0x91, 0xc1]))).code).toBe(
      "BAD_REQUEST",
    );
    expect(decodeError(() => msgpack.decode(new Uint8Array([0xd4, 0x05, 0x01]))).code).toBe(
      "BAD_REQUEST",
    );
  });

  it("accepts the byte 0xC1 inside strings and binary", () => {
    const value = { s: "\u00c1", bin: new Uint8Array([0xc1, 0xc1]) };
    const out = msgpack.decode(msgpack.encode(value)) as typeof value;
    expect(out.s).toBe("\u00c1");
    expect(Uint8Array.from(out.bin)).toEqual(new Uint8Array([0xc1, 0xc1]));
  });

  it("never throws anything but BAD_REQUEST on random input", () => {
    for (let i = 0; i < 5000; i++) {
      const bytes = randomBytes(1 + (i % 97));
      try {
        msgpack.decode(bytes);
      } catch (err) {
        expect(isMeshError(err, "BAD_REQUEST")).toBe(true);
      }
    }
  });

  it("does not let __proto__ keys change prototypes", () => {
    // {"__proto__": {"polluted": 1}}
    const bytes = Buffer.from([
      0x81,
      0xa9,
      ...Buffer.from("__proto__"),
      0x81,
      0xa8,
      ...Buffer.from("polluted"),
      1,
    ]);
    const out = msgpack.decode(bytes) as object;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("refuses a value it cannot encode", () => {
    const err = decodeError(() => msgpack.encode({ f: 10n ** 30n }));
    expect(err.code).toBe("BAD_REQUEST");
  });
});

describe("json", () => {
  it("round-trips nested values", () => {
    const value = { a: [1, { b: "c" }], d: true, e: null };
    expect(json.decode(json.encode(value))).toEqual(value);
  });

  it("refuses truncated, non-UTF-8 and random input with BAD_REQUEST", () => {
    const bytes = json.encode({ hello: "world" });
    for (let n = 1; n < bytes.length; n++) {
      expect(decodeError(() => json.decode(bytes.subarray(0, n))).code).toBe("BAD_REQUEST");
    }
    expect(decodeError(() => json.decode(new Uint8Array([0x22, 0xff, 0x22]))).code).toBe(
      "BAD_REQUEST",
    );
    for (let i = 0; i < 2000; i++) {
      try {
        json.decode(randomBytes(1 + (i % 50)));
      } catch (err) {
        expect(isMeshError(err, "BAD_REQUEST")).toBe(true);
      }
    }
  });

  it("treats an empty payload as undefined and undefined as empty", () => {
    expect(json.decode(new Uint8Array(0))).toBeUndefined();
    expect(json.encode(undefined)).toHaveLength(0);
  });

  it("refuses values JSON cannot hold", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(decodeError(() => json.encode(cyclic)).code).toBe("BAD_REQUEST");
    expect(decodeError(() => json.encode({ n: 1n })).code).toBe("BAD_REQUEST");
  });
});

describe("payload size", () => {
  it("refuses a message over max_payload with PAYLOAD_TOO_LARGE", () => {
    const err = checkPayloadSize(1_048_577, 1_048_576);
    expect(err?.code).toBe("PAYLOAD_TOO_LARGE");
    expect(err?.status).toBe(413);
    expect(err?.data).toEqual({ size: 1_048_577, maxPayload: 1_048_576 });
  });

  it("accepts a message at the limit", () => {
    expect(checkPayloadSize(1_048_576, 1_048_576)).toBeUndefined();
    expect(checkPayloadSize(0, 1024)).toBeUndefined();
  });
});
