import {
  InstrumentKind,
  MAX_SERIES_PER_METRIC,
  MeshMetrics,
  MethodAttributes,
  MetricSet,
  type ReadingPoint,
  type ScopeReading,
} from "@natsmesh/protocol/internal";
import { describe, expect, it } from "vitest";

const DURATION = { name: "d", description: "", unit: "s", kind: InstrumentKind.histogram };
const COUNT = { name: "c", description: "", unit: "{x}", kind: InstrumentKind.counter };
const GAUGE = { name: "g", description: "", unit: "{x}", kind: InstrumentKind.upDownCounter };

function points(readings: ScopeReading[], name: string): ReadingPoint[] {
  return readings.flatMap((r) => r.instruments.filter((i) => i.descriptor.name === name))[0]!
    .points;
}

/** An agent's set: a histogram, a counter and a gauge reading `inflight`. */
function agentSet(inflight: () => number) {
  const set = new MetricSet("scope");
  const duration = set.histogram(DURATION);
  const count = set.counter(COUNT);
  set.observe(GAUGE, (observe) => observe(inflight(), { svc: "a" }));
  return { set, duration, count };
}

describe("MeshMetrics", () => {
  it("merges equal attribute sets of two sets into one series", () => {
    const m = new MeshMetrics();
    const a = agentSet(() => 1);
    const b = agentSet(() => 2);
    m.add(a.set);
    m.add(b.set);
    // Distinct objects with equal content, as two agents of one service make them.
    const ma = new MethodAttributes("s/m");
    const mb = new MethodAttributes("s/m");
    a.duration.record(ma.ok, 0.001);
    b.duration.record(mb.ok, 0.002);
    b.duration.record(mb.failed("X"), 0.5);
    a.count.add(ma.ok, 3);
    b.count.add(mb.ok);

    const read = m.read();
    expect(read.map((r) => r.scope)).toEqual(["scope"]);
    const d = points(read, "d");
    expect(d).toHaveLength(2);
    const ok = d.find((p) => p.attrs["rpc.response.status_code"] === "OK")!;
    expect("histogram" in ok && [ok.histogram.count, ok.histogram.sum]).toEqual([2, 0.003]);
    expect(points(read, "c")).toEqual([expect.objectContaining({ value: 4 })]);
    expect(points(read, "g")).toEqual([expect.objectContaining({ value: 3 })]);
    // Reading does not change what is recorded.
    expect(a.duration.series.get(ma.ok)!.count).toBe(1);
  });

  it("keeps a retired set's counts and histograms, not its gauges", () => {
    const m = new MeshMetrics();
    const a = agentSet(() => 5);
    m.add(a.set);
    const attrs = new MethodAttributes("s/m").ok;
    a.duration.record(attrs, 0.01);
    a.count.add(attrs, 2);
    m.retire(a.set);
    m.retire(a.set);
    // Recorded after retiring: no longer read (a stopped agent records nothing anyway).
    a.count.add(attrs, 100);
    const read = m.read();
    expect(points(read, "c")).toEqual([expect.objectContaining({ value: 2 })]);
    const [d] = points(read, "d");
    expect(d && "histogram" in d && d.histogram.count).toBe(1);
    expect(read[0]!.instruments.map((i) => i.descriptor.name)).not.toContain("g");

    const b = agentSet(() => 1);
    m.add(b.set);
    b.count.add(new MethodAttributes("s/m").ok, 1);
    expect(points(m.read(), "c")).toEqual([expect.objectContaining({ value: 3 })]);
  });

  it("pools series past the bound into one overflow series", () => {
    const m = new MeshMetrics();
    const a = agentSet(() => 0);
    m.add(a.set);
    for (let i = 0; i < MAX_SERIES_PER_METRIC + 10; i++) a.count.add({ k: `v${i}` });
    const c = points(m.read(), "c");
    expect(c).toHaveLength(MAX_SERIES_PER_METRIC + 1);
    const overflow = c.find((p) => p.attrs["otel.metric.overflow"] === "true");
    expect(overflow && "value" in overflow && overflow.value).toBe(10);
  });
});
