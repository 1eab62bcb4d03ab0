import { MeshError } from "@natsmesh/protocol";
import {
  DURATION_BUCKETS_S,
  DurationHistogram,
  errorType,
  MethodAttributes,
  RpcAttributes,
  Telemetry,
} from "@natsmesh/protocol/internal";
import { describe, expect, it } from "vitest";

describe("metric attribute sets", () => {
  it("makes one frozen set per outcome and hands the same object back", () => {
    const m = new MethodAttributes("shop/buy");
    expect(m.ok).toEqual({
      "rpc.system.name": "natsmesh",
      "rpc.method": "shop/buy",
      "rpc.response.status_code": "OK",
    });
    expect(Object.isFrozen(m.ok)).toBe(true);
    expect(m.failed("OVERLOADED")).toBe(m.failed("OVERLOADED"));
    expect(m.failed("OVERLOADED")).toMatchObject({
      "error.type": "OVERLOADED",
      "rpc.response.status_code": "OVERLOADED",
    });
  });

  it("bounds the codes a peer can make into series, and refuses invalid ones", () => {
    const m = new MethodAttributes("shop/buy");
    const seen = new Set<unknown>();
    // A hostile agent answering every call with a new code.
    for (let i = 0; i < 500; i++) seen.add(m.failed(`CODE_${i}`)["error.type"]);
    expect(seen.size).toBe(Telemetry.maxErrorCodes + 1);
    expect(seen.has("_OTHER")).toBe(true);
    expect(new MethodAttributes("a/b").failed('x"\n{}')["error.type"]).toBe("INTERNAL");
  });

  it("bounds the methods a caller can make into series", () => {
    const rpc = new RpcAttributes();
    expect(rpc.of("shop", "buy")).toBe(rpc.of("shop", "buy"));
    for (let i = 0; i < Telemetry.maxMethods + 10; i++) rpc.of("svc", `m${i}`);
    expect(rpc.of("svc", "one-too-many").ok["rpc.method"]).toBe("_OTHER");
    expect(rpc.of("shop", "buy").ok["rpc.method"]).toBe("shop/buy");
  });

  it("keeps a histogram per attribute set, a value on a boundary in that boundary's bucket", () => {
    const h = new DurationHistogram();
    const a = new MethodAttributes("a/b");
    for (const s of [0.00005, 0.0001, 0.00011, 10, 11]) h.record(a.ok, s);
    h.record(a.failed("X"), 0.3);
    const series = h.series;
    expect(series.size).toBe(2);
    const ok = series.get(a.ok)!;
    expect(ok.count).toBe(5);
    expect(ok.sum).toBeCloseTo(21.00026, 6);
    expect([ok.min, ok.max]).toEqual([0.00005, 11]);
    const counts = Array.from(ok.counts);
    expect(counts).toHaveLength(DURATION_BUCKETS_S.length + 1);
    expect(counts[0]).toBe(2); // ≤ 100 µs, the boundary included
    expect(counts[1]).toBe(1); // ≤ 250 µs
    expect(counts[DURATION_BUCKETS_S.length - 1]).toBe(1); // ≤ 10 s
    expect(counts[DURATION_BUCKETS_S.length]).toBe(1); // beyond
    expect(series.get(a.failed("X"))!.count).toBe(1);
  });

  it("names the error type after the code or the error class", () => {
    expect(errorType(new MeshError("NOT_FOUND", "x"))).toBe("NOT_FOUND");
    expect(errorType(new TypeError("x"))).toBe("TypeError");
    expect(errorType(new DOMException("x", "AbortError"))).toBe("AbortError");
    expect(errorType("a string")).toBe("_OTHER");
    expect(errorType(undefined)).toBe("_OTHER");
  });
});
