import {
  LATENCY_BUCKETS,
  LATENCY_OVERFLOW_US,
  latencyBucket,
  latencyBucketLower,
  latencyBucketUpper,
  latencyQuantile,
} from "@natsmesh/protocol";
import { LatencyHistogram } from "@natsmesh/protocol/internal";
import { describe, expect, it } from "vitest";

describe("latency buckets", () => {
  it("cut each power of two into four buckets from 4 µs on", () => {
    expect([0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 14, 16].map(latencyBucket)).toEqual([
      0, 1, 2, 3, 4, 5, 7, 8, 8, 9, 10, 11, 12,
    ]);
    expect(latencyBucketLower(9)).toBe(10);
    expect(latencyBucketUpper(9)).toBe(12);
  });

  it("tile the line: each bucket starts where the previous ends, at most 25 % wide", () => {
    for (let i = 0; i < LATENCY_BUCKETS - 1; i++) {
      const lower = latencyBucketLower(i);
      const upper = latencyBucketUpper(i);
      expect(upper).toBe(latencyBucketLower(i + 1));
      expect(latencyBucket(lower)).toBe(i);
      expect(latencyBucket(upper - 1e-6)).toBe(i);
      if (lower >= 4) expect((upper - lower) / lower).toBeLessThanOrEqual(0.25);
    }
    expect(latencyBucketLower(LATENCY_BUCKETS - 1)).toBe(LATENCY_OVERFLOW_US);
    expect(latencyBucketUpper(LATENCY_BUCKETS - 1)).toBe(Number.POSITIVE_INFINITY);
  });

  it("put fractions, huge, negative and NaN durations in range", () => {
    expect(latencyBucket(0.9)).toBe(0);
    expect(latencyBucket(4.99)).toBe(4);
    expect(latencyBucket(LATENCY_OVERFLOW_US - 1)).toBe(LATENCY_BUCKETS - 2);
    expect(latencyBucket(LATENCY_OVERFLOW_US)).toBe(LATENCY_BUCKETS - 1);
    expect(latencyBucket(2 ** 40)).toBe(LATENCY_BUCKETS - 1);
    expect(latencyBucket(Number.POSITIVE_INFINITY)).toBe(LATENCY_BUCKETS - 1);
    expect(latencyBucket(-5)).toBe(0);
    expect(latencyBucket(Number.NaN)).toBe(0);
  });
});

describe("latencyQuantile", () => {
  it("is undefined for an empty histogram", () => {
    expect(latencyQuantile(new Float64Array(LATENCY_BUCKETS), 0.5)).toBeUndefined();
  });

  it("interpolates inside the bucket the rank falls in", () => {
    const h = new LatencyHistogram();
    // 100 calls of 1.0–1.2 ms (bucket [1024, 1280) µs) and one of 50 ms.
    for (let i = 0; i < 100; i++) h.recordMs(1 + i * 0.002);
    h.recordMs(50);
    const p50 = latencyQuantile(h.counts, 0.5)!;
    expect(p50).toBeGreaterThanOrEqual(1024);
    expect(p50).toBeLessThan(1280);
    expect(latencyQuantile(h.counts, 0.99)).toBeLessThan(1280);
    const max = latencyQuantile(h.counts, 1)!;
    // 50 ms lies in [49152, 57344) µs; q = 1 is the top of that bucket.
    expect(max).toBeGreaterThanOrEqual(49_152);
    expect(max).toBeLessThanOrEqual(57_344);
  });

  it("is within a bucket's width of the exact value on a spread of durations", () => {
    const h = new LatencyHistogram();
    const samples: number[] = [];
    for (let i = 1; i <= 10_000; i++) {
      const ms = 0.05 * 1.0007 ** i; // 50 µs to about 55 ms
      samples.push(ms * 1000);
      h.recordMs(ms);
    }
    for (const q of [0.5, 0.9, 0.99]) {
      const exact = samples[Math.ceil(q * samples.length) - 1]!;
      const got = latencyQuantile(h.counts, q)!;
      expect(Math.abs(got - exact) / exact).toBeLessThan(0.25);
    }
  });

  it("reports the lower bound when the rank falls in the last bucket", () => {
    const h = new LatencyHistogram();
    h.recordMs(100_000);
    expect(latencyQuantile(h.counts, 0.99)).toBe(LATENCY_OVERFLOW_US);
  });
});

describe("LatencyHistogram", () => {
  it("writes the non-empty buckets as [lower µs, count], ascending, and resets", () => {
    const h = new LatencyHistogram();
    h.recordMs(0.005);
    h.recordMs(1.1);
    h.recordMs(1.2);
    h.recordMs(0.0052);
    expect(h.toWire()).toEqual([
      [5, 2],
      [1024, 2],
    ]);
    h.reset();
    expect(h.toWire()).toEqual([]);
  });
});
