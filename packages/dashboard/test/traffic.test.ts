import { OTHER_ERRORS, parseStatsData, StatsLimits } from "@natsmesh/protocol";
import { LatencyHistogram } from "@natsmesh/protocol/internal";
import { describe, expect, it } from "vitest";
import type { InstanceSample } from "../src/stats-reply.js";
import { Traffic } from "../src/traffic.js";

interface Endpoint {
  name?: string;
  requests: number;
  errors?: number;
  /** Durations recorded, in ms. */
  ms?: number[];
  codes?: Record<string, number>;
}

/** A checked sample as gatherStats() hands it on, from cumulative counters. */
function sample(id: string, ...endpoints: Endpoint[]): InstanceSample {
  return {
    service: "svc",
    id,
    endpoints: endpoints.map((e) => {
      const h = new LatencyHistogram();
      for (const ms of e.ms ?? []) h.recordMs(ms);
      return {
        name: e.name ?? "m",
        requests: e.requests,
        errors: e.errors ?? 0,
        data:
          e.ms === undefined
            ? undefined
            : parseStatsData({ latency_us: h.toWire(), errors: e.codes ?? {} }),
      };
    }),
  };
}

const of = (...samples: InstanceSample[]) => new Map(samples.map((s) => [s.id, s]));
const repeat = (n: number, ms: number) => Array.from({ length: n }, () => ms);

describe("Traffic", () => {
  it("takes the first sample of an instance as its baseline only", () => {
    const t = new Traffic(10);
    const { point, instances } = t.add(
      "svc",
      of(sample("a", { requests: 500, ms: repeat(500, 1) })),
      0,
      1000,
    );
    expect(point).toMatchObject({
      rps: 0,
      reporting: 0,
      errorRate: null,
      p50Ms: null,
      p99Ms: null,
    });
    expect(Object.keys(instances)).toEqual([]);
    expect(t.history("svc")).toEqual([]);
  });

  it("computes rates from counter deltas over each instance's own interval", () => {
    const t = new Traffic(10);
    t.add("svc", of(sample("a", { requests: 100, errors: 1 }), sample("b", { requests: 0 })), 0, 0);
    // a: +200 requests, +20 errors in 2 s; b: +50 in 2 s.
    const { point, instances } = t.add(
      "svc",
      of(sample("a", { requests: 300, errors: 21 }), sample("b", { requests: 50 })),
      2000,
      2000,
    );
    expect(point.rps).toBeCloseTo(125);
    expect(point.eps).toBeCloseTo(10);
    expect(point.errorRate).toBeCloseTo(20 / 250);
    expect(point.reporting).toBe(2);
    expect(instances.a).toEqual({ rps: 100, errorRate: 0.1 });
    expect(instances.b).toEqual({ rps: 25, errorRate: 0 });
    // b missed a poll: its next delta spans 4 s, and its rate is per its own interval.
    const next = t.add("svc", of(sample("b", { requests: 450 })), 6000, 6000);
    expect(next.instances.b?.rps).toBeCloseTo(100);
    expect(next.point.rps).toBeCloseTo(100);
  });

  it("computes p50 and p99 from the histogram growth of the interval, across instances", () => {
    const t = new Traffic(10);
    // Before: 1000 slow calls (50 ms) that must not count in the next interval.
    t.add(
      "svc",
      of(
        sample("a", { requests: 1000, ms: repeat(1000, 50) }),
        sample("b", { requests: 0, ms: [] }),
      ),
      0,
      0,
    );
    const a = [...repeat(1000, 50), ...repeat(99, 2)];
    const b = repeat(1, 300);
    const { point } = t.add(
      "svc",
      of(sample("a", { requests: 1099, ms: a }), sample("b", { requests: 1, ms: b })),
      1000,
      1000,
    );
    // The interval holds 99 calls of 2 ms and one of 300 ms.
    expect(point.p50Ms).toBeGreaterThanOrEqual(2 * 0.75);
    expect(point.p50Ms).toBeLessThanOrEqual(2 * 1.25);
    expect(point.p99Ms).toBeLessThanOrEqual(2.5);
    const max = t.add("svc", of(sample("b", { requests: 2, ms: [...b, 300] })), 2000, 2000).point;
    expect(max.p99Ms).toBeGreaterThanOrEqual(300 * 0.8);
    expect(max.p99Ms).toBeLessThanOrEqual(300 * 1.25);
  });

  it("treats counters that went down as a reset: a new baseline, no negative rates", () => {
    const t = new Traffic(10);
    t.add("svc", of(sample("a", { requests: 1000, ms: repeat(10, 1) })), 0, 0);
    const reset = t.add("svc", of(sample("a", { requests: 5, ms: repeat(5, 1) })), 1000, 1000);
    expect(reset.point.rps).toBe(0);
    expect(reset.point.p50Ms).toBeNull();
    const after = t.add("svc", of(sample("a", { requests: 15, ms: repeat(15, 1) })), 2000, 2000);
    expect(after.point.rps).toBe(10);
  });

  it("ignores a histogram that shrank while the counters grew", () => {
    const t = new Traffic(10);
    t.add("svc", of(sample("a", { requests: 10, ms: repeat(10, 1) })), 0, 0);
    const { point } = t.add("svc", of(sample("a", { requests: 20, ms: repeat(5, 1) })), 1000, 1000);
    expect(point.rps).toBe(10);
    expect(point.p50Ms).toBeNull();
  });

  it("counts errors by code per interval, at most StatsLimits.maxErrorCodes of them", () => {
    const t = new Traffic(10);
    t.add(
      "svc",
      of(sample("a", { requests: 1, errors: 1, ms: [1], codes: { DECLINED: 1 } })),
      0,
      0,
    );
    const codes = Object.fromEntries(
      Array.from({ length: StatsLimits.maxErrorCodes }, (_, i) => [`E${i}`, 1]),
    );
    const { point } = t.add(
      "svc",
      of(
        sample(
          "a",
          { requests: 4, errors: 4, ms: [1, 1, 1, 1], codes: { DECLINED: 4 } },
          { name: "n", requests: 0, ms: [] },
        ),
      ),
      1000,
      1000,
    );
    expect({ ...point.errors }).toEqual({ DECLINED: 3 });
    t.add("svc", of(sample("b", { requests: 0, ms: [] })), 1000, 1000);
    const many = t.add(
      "svc",
      of(sample("b", { requests: 40, errors: 40, ms: repeat(40, 1), codes: { ...codes, X: 8 } })),
      2000,
      2000,
    );
    expect(Object.keys(many.point.errors)).toHaveLength(StatsLimits.maxErrorCodes + 1);
    expect(many.point.errors[OTHER_ERRORS]).toBe(8);
  });

  it("keys instances and codes named __proto__ as plain keys", () => {
    const t = new Traffic(10);
    t.add("svc", of(sample("__proto__", { requests: 0, ms: [], codes: {} })), 0, 0);
    const { point, instances } = t.add(
      "svc",
      of(
        sample("__proto__", {
          requests: 2,
          errors: 2,
          ms: [1, 1],
          codes: JSON.parse('{"__proto__":2}'),
        }),
      ),
      1000,
      1000,
    );
    expect(Object.hasOwn(instances, "__proto__")).toBe(true);
    expect(JSON.parse(JSON.stringify(point.errors))).toEqual(JSON.parse('{"__proto__":2}'));
  });

  it("keeps the last historyPoints points and forgets what went away", () => {
    const t = new Traffic(3);
    for (let i = 0; i <= 5; i++)
      t.add("svc", of(sample("a", { requests: i * 10 })), i * 1000, i * 1000);
    expect(t.history("svc").map((p) => p.at)).toEqual([3000, 4000, 5000]);
    t.forgetInstance("svc", "a");
    expect(t.add("svc", of(sample("a", { requests: 100 })), 6000, 6000).point.reporting).toBe(0);
    t.forgetService("svc");
    expect(t.history("svc")).toEqual([]);
  });
});
