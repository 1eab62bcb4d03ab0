import { decode as independentDecode, encode as independentEncode } from "@msgpack/msgpack";
import { codecs, isMeshError } from "@natsmesh/protocol";
import { DEFAULT_DECODE_LIMITS, scanPayload } from "@natsmesh/protocol/internal";
import { describe, expect, it } from "vitest";

const { msgpack, json } = codecs;
const limits = { maxElements: 10, maxDepth: 2 };

function scan(data: Uint8Array | number[] | string, l = limits, codec = msgpack) {
  const bytes =
    typeof data === "string"
      ? new TextEncoder().encode(data)
      : data instanceof Uint8Array
        ? data
        : new Uint8Array(data);
  return scanPayload(codec, bytes, l);
}

function codeOf(result: unknown): string | number {
  return isMeshError(result) ? result.code : (result as number);
}

describe("scanPayload (MessagePack)", () => {
  it("counts every value, map keys included", () => {
    expect(scan([])).toBe(0);
    expect(scan([0xc0])).toBe(1);
    expect(scan(msgpack.encode([1, 2, 3]))).toBe(4);
    expect(scan(msgpack.encode({ a: 1, b: [true, null] }))).toBe(7);
    expect(scan(independentEncode({ a: "x".repeat(300), b: new Uint8Array(70_000) }))).toBe(5);
  });

  it("agrees with an independent encoder on every type", () => {
    const value = {
      ints: [
        0,
        127,
        128,
        255,
        256,
        65_535,
        65_536,
        2 ** 32,
        -1,
        -32,
        -33,
        -129,
        -32_769,
        -(2 ** 31) - 1,
      ],
      floats: [1.5, -0.25],
      str: ["", "a", "é", "x".repeat(40), "y".repeat(300), "z".repeat(70_000)],
      bin: new Uint8Array(300),
      nested: { deep: [[]] },
      big: Array.from({ length: 20 }, (_, i) => i),
      map: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
      at: new Date(1_700_000_000_123),
    };
    const bytes = independentEncode(value);
    const n = scan(bytes, { maxElements: 1000, maxDepth: 5 });
    expect(typeof n).toBe("number");
    // msgpackr gives 64-bit integers as BigInt, @msgpack/msgpack as numbers: compare as numbers.
    const plain = (v: unknown) =>
      JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? Number(x) : x));
    expect(plain(msgpack.decode(bytes))).toBe(plain(independentDecode(bytes)));
  });

  it("refuses more values than maxElements with PAYLOAD_TOO_LARGE, before reading them", () => {
    expect(codeOf(scan(msgpack.encode(Array(10).fill(0))))).toBe("PAYLOAD_TOO_LARGE");
    expect(codeOf(scan(msgpack.encode(Array(9).fill(0))))).toBe(10);
    const huge = new Uint8Array(5 + 1_000_000).fill(0x80);
    huge.set([0xdd, 0x00, 0x0f, 0x42, 0x40]);
    expect(codeOf(scan(huge, DEFAULT_DECODE_LIMITS))).toBe("PAYLOAD_TOO_LARGE");
  });

  it("refuses nesting beyond maxDepth with BAD_REQUEST", () => {
    expect(codeOf(scan(msgpack.encode([[1]])))).toBe(3);
    expect(codeOf(scan(msgpack.encode([[[1]]])))).toBe("BAD_REQUEST");
    expect(codeOf(scan(msgpack.encode({ a: { b: {} } })))).toBe(5);
    expect(codeOf(scan(msgpack.encode({ a: { b: { c: 1 } } })))).toBe("BAD_REQUEST");
  });

  it.each([
    ["truncated array", [0x93, 0x01]],
    ["a count the bytes cannot hold", [0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]],
    ["truncated str8 length", [0xd9]],
    ["truncated string", [0xa5, 0x61]],
    ["truncated bin", [0xc4, 0x05, 0x00]],
    ["truncated float", [0xcb, 0x00]],
    ["trailing bytes", [0x01, 0x02]],
    ["0xC1", [0x91, 0xc1]],
    ["invalid UTF-8", [0xa1, 0xff]],
    ["overlong UTF-8", [0xa2, 0xc0, 0xaf]],
    ["a UTF-16 surrogate", [0xa3, 0xed, 0xa0, 0x80]],
    ["an invalid UTF-8 key", [0x81, 0xa1, 0xfe, 0xc0]],
    ["extension 0 (undefined)", [0xd4, 0x00, 0x00]],
    ["a Set", [0xd4, 0x73, 0x90]],
    ["a record definition", [0xd4, 0x72, 0x40]],
    ["a structured clone", [0xd6, 0x69, 0, 0, 0, 1]],
    ["a 2-byte timestamp", [0xd5, 0xff, 0, 0]],
    ["ext 8 of an unknown type", [0xc7, 0x01, 0x05, 0x00]],
  ])("refuses %s with BAD_REQUEST", (_name, bytes) => {
    expect(codeOf(scan(bytes, DEFAULT_DECODE_LIMITS))).toBe("BAD_REQUEST");
    expect(() => msgpack.decode(new Uint8Array(bytes))).toThrow(
      expect.objectContaining({ code: "BAD_REQUEST" }),
    );
  });

  it("accepts the timestamp extension in its three sizes", () => {
    for (const bytes of [
      [0xd6, 0xff, 0, 0, 0, 1],
      [0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 1],
      [0xc7, 12, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    ]) {
      expect(scan(bytes)).toBe(1);
      expect(msgpack.decode(new Uint8Array(bytes))).toBeInstanceOf(Date);
    }
  });
});

describe("scanPayload (JSON)", () => {
  it("counts brackets, commas and colons outside strings", () => {
    expect(scan("1", limits, json)).toBe(1);
    expect(scan("[1,2,3]", limits, json)).toBe(4);
    expect(scan('{"a":1,"b":2}', limits, json)).toBe(5);
    expect(scan('"[,:{\\"]"', limits, json)).toBe(1);
  });

  it("refuses too many values and too deep nesting", () => {
    expect(codeOf(scan(`[${Array(10).fill(0).join(",")}]`, limits, json))).toBe(
      "PAYLOAD_TOO_LARGE",
    );
    expect(codeOf(scan("[[[1]]]", limits, json))).toBe("BAD_REQUEST");
    expect(codeOf(scan("[[1]]", limits, json))).toBe(3);
  });

  it("leaves invalid JSON to the decoder", () => {
    expect(typeof scan("[1,", limits, json)).toBe("number");
    expect(() => json.decode(new TextEncoder().encode("[1,"))).toThrow(
      expect.objectContaining({ code: "BAD_REQUEST" }),
    );
  });
});
