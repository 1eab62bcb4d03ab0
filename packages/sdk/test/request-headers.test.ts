import { codecs } from "@natsmesh/protocol";
import { ownTokenLines, renderUserHeaders, requestHeaders } from "@natsmesh/sdk/internal";
import { describe, expect, it } from "vitest";

const TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const LINES = `traceparent: ${TRACE}\r\n`;

describe("requestHeaders", () => {
  it("writes a first attempt's block: content type and deadline, nothing optional", () => {
    const h = requestHeaders(codecs.msgpack, 1_700_000_000_123, 1, "", undefined, "", "");
    expect(h).toBe(
      "NATS/1.0\r\n" +
        "Content-Type: application/msgpack\r\n" +
        "Mesh-Deadline: 1700000000123\r\n" +
        "\r\n",
    );
  });

  it("adds the attempt from the second on, the trace, the idempotency key, the token and user lines", () => {
    const user = renderUserHeaders({ "X-Tenant": "acme" });
    const token = ownTokenLines("t.o.k").full;
    const h = requestHeaders(codecs.json, 5, 2, LINES, "key-1", token, user);
    expect(h).toBe(
      "NATS/1.0\r\n" +
        "Content-Type: application/json\r\n" +
        "Mesh-Deadline: 5\r\n" +
        "Mesh-Attempt: 2\r\n" +
        `traceparent: ${TRACE}\r\n` +
        "Mesh-Idempotency-Key: key-1\r\n" +
        "Authorization: Bearer t.o.k\r\n" +
        "X-Tenant: acme\r\n" +
        "\r\n",
    );
  });

  it("reuses the last block only when every argument is the same", () => {
    const full = ownTokenLines("t.o.k").full;
    const base = [codecs.msgpack, 7, 1, "", undefined, full, ""] as const;
    const text = (deadline: number, attempt: number, idem: string | undefined, user: string) =>
      "NATS/1.0\r\nContent-Type: application/msgpack\r\n" +
      `Mesh-Deadline: ${deadline}\r\n` +
      (attempt > 1 ? `Mesh-Attempt: ${attempt}\r\n` : "") +
      (idem === undefined ? "" : `Mesh-Idempotency-Key: ${idem}\r\n`) +
      `Authorization: Bearer t.o.k\r\n${user}\r\n`;
    expect(requestHeaders(...base)).toBe(text(7, 1, undefined, ""));
    expect(requestHeaders(...base)).toBe(text(7, 1, undefined, ""));
    // Each argument in turn differs from the call before it.
    expect(requestHeaders(codecs.msgpack, 8, 1, "", undefined, full, "")).toBe(
      text(8, 1, undefined, ""),
    );
    expect(requestHeaders(codecs.msgpack, 8, 2, "", undefined, full, "")).toBe(
      text(8, 2, undefined, ""),
    );
    expect(requestHeaders(codecs.msgpack, 8, 2, "", "k", full, "")).toBe(text(8, 2, "k", ""));
    expect(requestHeaders(codecs.msgpack, 8, 2, "", "k", full, "X-A: 1\r\n")).toBe(
      text(8, 2, "k", "X-A: 1\r\n"),
    );
    expect(requestHeaders(codecs.msgpack, 8, 2, LINES, "k", full, "")).toContain(LINES);
    expect(requestHeaders(codecs.json, 8, 2, "", "k", full, "")).toContain("application/json");
    expect(requestHeaders(codecs.json, 8, 2, "", "k", "", "")).not.toContain("Authorization");
  });
});

describe("renderUserHeaders", () => {
  it("renders caller headers as lines and leaves out the ones the mesh sets itself", () => {
    expect(renderUserHeaders(undefined)).toBe("");
    expect(
      renderUserHeaders({
        "X-A": "1",
        "content-type": "text/plain",
        "MESH-DEADLINE": "1",
        "mesh-token-ref": "forged",
        "Mesh-Attempt": "9",
        traceparent: TRACE,
        "Mesh-Idempotency-Key": "k",
        authorization: "Bearer forged",
        "X-B": "two words",
      }),
    ).toBe("X-A: 1\r\nX-B: two words\r\n");
  });

  it("leaves tracestate and baggage to the span's context when the call is traced", () => {
    const headers = { traceparent: TRACE, tracestate: "a=1", Baggage: "k=v", "X-A": "1" };
    expect(renderUserHeaders(headers)).toBe("tracestate: a=1\r\nBaggage: k=v\r\nX-A: 1\r\n");
    expect(renderUserHeaders(headers, true)).toBe("X-A: 1\r\n");
  });

  it("sends tracestate only with a valid traceparent (W3C discards it otherwise)", () => {
    const rest = { tracestate: "a=1", Baggage: "k=v" };
    expect(renderUserHeaders(rest)).toBe("Baggage: k=v\r\n");
    expect(renderUserHeaders({ traceparent: "00-zzzz-bad", ...rest })).toBe("Baggage: k=v\r\n");
    expect(renderUserHeaders({ traceparent: TRACE, ...rest })).toBe(
      "tracestate: a=1\r\nBaggage: k=v\r\n",
    );
  });

  it.each([
    [{ "Bad Name": "x" }],
    [{ "X-Ok": "line\r\nInjected: 1" }],
    [{ "X-Ok": "line\nInjected: 1" }],
    [{ "X-Ok": 7 as unknown as string }],
    [{ "": "empty name" }],
  ])("refuses %j with a TypeError", (headers) => {
    expect(() => renderUserHeaders(headers)).toThrow(TypeError);
  });
});
