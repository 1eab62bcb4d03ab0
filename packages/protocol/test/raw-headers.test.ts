import { HeaderBlock, MSGPACK_REPLY_HEADER, sameBytes } from "@natsmesh/protocol/internal";
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

describe("MSGPACK_REPLY_HEADER", () => {
  it("is the header block nats.js would write for Content-Type: application/msgpack", () => {
    expect(Buffer.from(MSGPACK_REPLY_HEADER).toString()).toBe(
      "NATS/1.0\r\nContent-Type: application/msgpack\r\n\r\n",
    );
    expect(sameBytes(MSGPACK_REPLY_HEADER, new Uint8Array(MSGPACK_REPLY_HEADER))).toBe(true);
    expect(sameBytes(MSGPACK_REPLY_HEADER, MSGPACK_REPLY_HEADER.subarray(1))).toBe(false);
  });
});
