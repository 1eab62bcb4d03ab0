import {
  HeaderBlock,
  HeaderNames,
  MSGPACK_REPLY_HEADER,
  sameBytes,
} from "@natsmesh/protocol/internal";
import { describe, expect, it } from "vitest";

const block = (text: string) => new HeaderBlock(Buffer.from(text, "utf8"));

describe("HeaderBlock", () => {
  const h = block(
    "NATS/1.0\r\nContent-Type: application/msgpack\r\nX-Mesh-Deadline: 1\r\nMesh-Deadline:  1764000000000 \r\nTraceparent: 00-abc\r\nmesh-deadline: 2\r\nX-Name: Zoë\r\n\r\n",
  );

  it("finds values case-insensitively, first occurrence, trimmed", () => {
    expect(h.get("content-type")).toBe("application/msgpack");
    expect(h.get("mesh-deadline")).toBe("1764000000000");
    expect(h.get("traceparent")).toBe("00-abc");
  });

  it("does not match a name inside a longer name", () => {
    expect(block("NATS/1.0\r\nX-Mesh-Deadline: 1\r\n\r\n").get("mesh-deadline")).toBeUndefined();
  });

  it("decodes UTF-8 values", () => {
    expect(h.get("x-name")).toBe("Zoë");
  });

  it("returns undefined for a missing header, an empty block and garbage", () => {
    expect(h.get("authorization")).toBeUndefined();
    expect(block("").get("content-type")).toBeUndefined();
    expect(block("\u0000\u00ff garbage").get("content-type")).toBeUndefined();
    expect(block("NATS/1.0\r\nContent-Type: json").get("content-type")).toBe("json");
  });

  it("reads the status of the first line", () => {
    expect(block("NATS/1.0 503\r\n\r\n").status).toBe(503);
    expect(block("NATS/1.0 408 Request Timeout\r\n\r\n").status).toBe(408);
    expect(h.status).toBe(0);
    expect(block("NATS/1.0 abc\r\n\r\n").status).toBe(0);
    expect(block("").status).toBe(0);
  });
});

describe("HeaderNames", () => {
  const names = new HeaderNames([
    "Content-Type",
    "Mesh-Deadline",
    "traceparent",
    "X-Name",
    "Authorization",
  ]);
  const read = (text: string) => names.read(Buffer.from(text, "utf8"));

  it("finds values case-insensitively, first occurrence, trimmed, in the names' order", () => {
    expect(
      read(
        "NATS/1.0\r\nContent-Type: application/msgpack\r\nX-Mesh-Deadline: 1\r\nMesh-Deadline:  1764000000000 \r\nTraceparent: 00-abc\r\nmesh-deadline: 2\r\nX-Name: Zoë\r\n\r\n",
      ),
    ).toEqual(["application/msgpack", "1764000000000", "00-abc", "Zoë", undefined]);
  });

  it("reads the SDK's own block", () => {
    expect(
      read(
        "NATS/1.0\r\nContent-Type: application/msgpack\r\nMesh-Deadline: 1700000000123\r\nAuthorization: Bearer a.b.c\r\n\r\n",
      ),
    ).toEqual(["application/msgpack", "1700000000123", undefined, undefined, "Bearer a.b.c"]);
  });

  it("matches whole names only, and nothing in the status line or in values", () => {
    expect(
      read(
        "NATS/1.0 Content-Type: x\r\nX-Mesh-Deadline: 1\r\nMesh-Deadline-2: 3\r\nX-Y: Content-Type: no\r\n\r\n",
      ),
    ).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it("returns empty values as empty, and survives an empty block, garbage and a block without its end", () => {
    expect(read("NATS/1.0\r\nContent-Type:\r\nX-Name:   \r\n\r\n")).toEqual([
      "",
      undefined,
      undefined,
      "",
      undefined,
    ]);
    expect(read("")).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(read("\u0000\u00ff garbage\r\n:\r\n\r")).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    expect(read("NATS/1.0\r\nContent-Type: json")[0]).toBe("json");
  });

  it("does not fold non-letters onto letters", () => {
    // 0x0D | 0x20 is "-": a byte-wise lower-casing that ignored letters would match this.
    const block = Buffer.from("NATS/1.0\r\nContent\rType: x\r\n\r\n", "latin1");
    expect(names.read(block)[0]).toBeUndefined();
  });

  it("refuses a name that is not a plain header name", () => {
    expect(() => new HeaderNames(["Bad Name"])).toThrow(TypeError);
  });
});

describe("MSGPACK_REPLY_HEADER", () => {
  it("is the header block nats.js would write for Content-Type: application/msgpack", () => {
    expect(Buffer.from(MSGPACK_REPLY_HEADER).toString()).toBe(
      "NATS/1.0\r\nContent-Type: application/msgpack\r\n\r\n",
    );
    expect(sameBytes(MSGPACK_REPLY_HEADER, new Uint8Array(MSGPACK_REPLY_HEADER))).toBe(true);
    expect(sameBytes(MSGPACK_REPLY_HEADER, MSGPACK_REPLY_HEADER.subarray(1))).toBe(false);
  });
});
