import { isMeshError } from "@natsmesh/protocol";
import {
  boundedTracestate,
  childTraceparent,
  MAX_TRACESTATE_LENGTH,
  parseAttempt,
  parseDeadline,
  parseTraceparent,
} from "@natsmesh/protocol/internal";
import { describe, expect, it } from "vitest";

const HOSTILE = [
  "abc",
  "-1",
  "1e3",
  "1.5",
  " 12",
  "0x10",
  "12345678901234567",
  "NaN",
  "Infinity",
  "\r\n",
  "１２",
];

describe("Mesh-Deadline", () => {
  it("is undefined when absent", () => {
    expect(parseDeadline(undefined)).toBeUndefined();
    expect(parseDeadline("")).toBeUndefined();
  });

  it("parses epoch milliseconds", () => {
    expect(parseDeadline("1764000000000")).toBe(1764000000000);
  });

  it.each([...HOSTILE, "0"])("is BAD_REQUEST for %j, never a throw", (value) => {
    expect(isMeshError(parseDeadline(value), "BAD_REQUEST")).toBe(true);
  });
});

describe("Mesh-Attempt", () => {
  it("defaults to 1 and parses 1..1000", () => {
    expect(parseAttempt(undefined)).toBe(1);
    expect(parseAttempt("")).toBe(1);
    expect(parseAttempt("3")).toBe(3);
    expect(parseAttempt("1000")).toBe(1000);
  });

  it.each([...HOSTILE, "0", "1001"])("is BAD_REQUEST for %j", (value) => {
    expect(isMeshError(parseAttempt(value), "BAD_REQUEST")).toBe(true);
  });
});

describe("traceparent", () => {
  const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

  it("parses a valid value", () => {
    expect(parseTraceparent(valid)).toEqual({
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      parentId: "00f067aa0ba902b7",
      flags: "01",
    });
  });

  it.each([
    "",
    "garbage",
    valid.toUpperCase(),
    `${valid}-extra`,
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
  ])("treats %j as absent (W3C: start a new trace)", (value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it("continues a parent's trace with a new span", () => {
    const child = childTraceparent(valid);
    const p = parseTraceparent(child);
    expect(p?.traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    expect(p?.parentId).not.toBe("00f067aa0ba902b7");
    expect(p?.flags).toBe("01");
  });

  it("starts a new valid trace without a parent or with a bad one", () => {
    const ids = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const t = childTraceparent(i % 2 === 0 ? undefined : "bad");
      const p = parseTraceparent(t);
      expect(p).toBeDefined();
      ids.add(p!.traceId);
    }
    expect(ids.size).toBe(2000);
  });
});

describe("tracestate passed on", () => {
  it("keeps a value of up to 512 characters as it is", () => {
    const value = `a=${"x".repeat(MAX_TRACESTATE_LENGTH - 2)}`;
    expect(boundedTracestate("vendor=abc,other=1")).toBe("vendor=abc,other=1");
    expect(boundedTracestate(value)).toBe(value);
  });

  it("cuts a longer one as W3C says: members over 128 characters first, then from the right", () => {
    const big = `big=${"y".repeat(200)}`;
    const members = Array.from({ length: 40 }, (_, i) => `k${i}=${"v".repeat(20)}`);
    const out = boundedTracestate([members[0], big, ...members.slice(1)].join(","))!;
    expect(out.length).toBeLessThanOrEqual(MAX_TRACESTATE_LENGTH);
    expect(out).not.toContain("big=");
    const kept = out.split(",");
    // Each member is 24 characters: 20 fit with their commas, in their order.
    expect(kept).toEqual(members.slice(0, 20));
  });

  it("bounds what a hostile peer sends: a megabyte gives at most 512 characters or nothing", () => {
    expect(boundedTracestate("x".repeat(1 << 20))).toBeUndefined();
    expect(boundedTracestate(",".repeat(1 << 20))).toBeUndefined();
    const many = boundedTracestate("a=1,".repeat(1 << 18))!;
    expect(many.split(",")).toHaveLength(32);
  });
});
