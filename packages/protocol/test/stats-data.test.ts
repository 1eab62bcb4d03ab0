import { LATENCY_BUCKETS, OTHER_ERRORS, parseStatsData, StatsLimits } from "@natsmesh/protocol";
import { describe, expect, it } from "vitest";

describe("parseStatsData", () => {
  it("reads the wire form into counts by bucket and errors by code", () => {
    const parsed = parseStatsData({
      latency_us: [
        [5, 2],
        [1024, 7],
      ],
      errors: { DEADLINE_EXCEEDED: 2, [OTHER_ERRORS]: 1 },
    });
    expect(parsed?.latency.length).toBe(LATENCY_BUCKETS);
    expect(parsed?.latency[5]).toBe(2);
    expect(parsed?.latency[36]).toBe(7);
    expect(parsed?.latency.reduce((a, b) => a + b, 0)).toBe(9);
    expect([...(parsed?.errors ?? [])]).toEqual([
      ["DEADLINE_EXCEEDED", 2],
      [OTHER_ERRORS, 1],
    ]);
  });

  it.each([
    ["not an object", "x"],
    ["null", null],
    ["an array", []],
    ["no buckets", { errors: {} }],
    ["no errors", { latency_us: [] }],
    ["a bound that is not a bucket's lower bound", { latency_us: [[6.5, 1]], errors: {} }],
    [
      "bounds out of order",
      {
        latency_us: [
          [10, 1],
          [5, 1],
        ],
        errors: {},
      },
    ],
    [
      "the same bucket twice",
      {
        latency_us: [
          [5, 1],
          [5, 1],
        ],
        errors: {},
      },
    ],
    ["a negative count", { latency_us: [[5, -1]], errors: {} }],
    ["a fractional count", { latency_us: [[5, 1.5]], errors: {} }],
    ["a huge count", { latency_us: [[5, 2 ** 60]], errors: {} }],
    ["a string count", { latency_us: [[5, "1"]], errors: {} }],
    ["a pair of three", { latency_us: [[5, 1, 2]], errors: {} }],
    [
      "too many buckets",
      { latency_us: Array.from({ length: LATENCY_BUCKETS + 1 }, (_, i) => [i, 1]), errors: {} },
    ],
    ["a negative error count", { latency_us: [], errors: { INTERNAL: -1 } }],
    ["an empty code", { latency_us: [], errors: { "": 1 } }],
    ["a code too long", { latency_us: [], errors: { ["X".repeat(65)]: 1 } }],
    ["a code with a space", { latency_us: [], errors: { "NOT FOUND": 1 } }],
    [
      "too many codes",
      {
        latency_us: [],
        errors: Object.fromEntries(
          Array.from({ length: StatsLimits.maxErrorCodes + 2 }, (_, i) => [`E${i}`, 1]),
        ),
      },
    ],
  ])("refuses %s", (_what, value) => {
    expect(parseStatsData(value)).toBeUndefined();
  });

  it("takes a __proto__ code as a plain code", () => {
    const parsed = parseStatsData(JSON.parse('{"latency_us":[],"errors":{"__proto__":3}}'));
    expect(parsed?.errors.get("__proto__")).toBe(3);
  });

  it("takes one code past the limit: the OTHER count", () => {
    const errors = Object.fromEntries(
      Array.from({ length: StatsLimits.maxErrorCodes + 1 }, (_, i) => [`E${i}`, 1]),
    );
    expect(parseStatsData({ latency_us: [], errors })?.errors.size).toBe(
      StatsLimits.maxErrorCodes + 1,
    );
  });
});
