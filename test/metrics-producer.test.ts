import { natsmeshMetricProducer, startAgent } from "@natsmesh/agent";
import { DURATION_BUCKETS_S } from "@natsmesh/protocol/internal";
import { connectMesh } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup, uniquePrefix } from "@natsmesh/testing";
import { metrics } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AggregationTemporality,
  type DataPoint,
  DataPointType,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestSetup;
beforeAll(async () => {
  t = await setup();
});
afterAll(async () => {
  metrics.disable();
  await cleanup(t);
});

/** A user's OpenTelemetry setup: an exporter behind a periodic reader, with the one line added. */
function userSdk() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({
    exporter,
    exportIntervalMillis: 3_600_000,
    metricProducers: [natsmeshMetricProducer()],
  });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ "service.name": "checkout" }),
    readers: [reader],
  });
  /** What the exporter was handed by the last export, after flushing one now. */
  const exported = async (): Promise<ResourceMetrics> => {
    exporter.reset();
    await reader.forceFlush();
    const batches = exporter.getMetrics();
    expect(batches).toHaveLength(1);
    return batches[0]!;
  };
  return { provider, exported };
}

function metric(rm: ResourceMetrics, scope: string, name: string): MetricData {
  const found = rm.scopeMetrics
    .filter((s) => s.scope.name === scope)
    .flatMap((s) => s.metrics)
    .filter((m) => m.descriptor.name === name);
  expect(found, `${scope} ${name}`).toHaveLength(1);
  return found[0]!;
}

function point<T>(m: MetricData, attrs: Record<string, string | undefined>): DataPoint<T> {
  const found = (m.dataPoints as DataPoint<T>[]).filter((p) =>
    Object.entries(attrs).every(([k, v]) => p.attributes[k] === v),
  );
  expect(found, `${m.descriptor.name} ${JSON.stringify(attrs)}`).toHaveLength(1);
  return found[0]!;
}

describe("natsmeshMetricProducer() in a user's OpenTelemetry SDK", () => {
  it("exports calls made before and after the MeterProvider was registered", async () => {
    const prefix = uniquePrefix("late");
    await using agent = await startAgent({
      connection: t.nc,
      prefix,
      service: "cart",
      methods: { add: (n: number) => n + 1, fail: () => Promise.reject(new Error("boom")) },
    });
    await using mesh = await connectMesh({ connection: t.nc, prefix, presence: false });
    expect(agent.record.methods).toEqual(["add", "fail"]);
    for (let i = 0; i < 3; i++) await mesh.request("cart", "add", i);
    await expect(mesh.request("cart", "fail", 0, { retries: 0 })).rejects.toMatchObject({
      code: "INTERNAL",
    });

    // Registered only now, after the agent and the mesh started and served calls.
    const { provider, exported } = userSdk();
    expect(metrics.setGlobalMeterProvider(provider)).toBe(true);
    let rm = await exported();
    expect(rm.resource.attributes["service.name"]).toBe("checkout");

    const server = metric(rm, "@natsmesh/agent", "rpc.server.call.duration");
    expect(server.descriptor).toMatchObject({
      unit: "s",
      description: "Time from a request's arrival at the agent to its reply.",
    });
    expect(server.dataPointType).toBe(DataPointType.HISTOGRAM);
    expect(server.aggregationTemporality).toBe(AggregationTemporality.CUMULATIVE);
    const ok = point<Histogram>(server, {
      "rpc.system.name": "natsmesh",
      "rpc.method": "cart/add",
      "rpc.response.status_code": "OK",
    });
    expect(ok.attributes["error.type"]).toBeUndefined();
    expect(ok.value.count).toBe(3);
    expect(ok.value.sum).toBeGreaterThan(0);
    expect(ok.value.min).toBeGreaterThan(0);
    expect(ok.value.max).toBeGreaterThanOrEqual(ok.value.min!);
    expect(ok.value.buckets.boundaries).toEqual([...DURATION_BUCKETS_S]);
    expect(ok.value.buckets.counts).toHaveLength(DURATION_BUCKETS_S.length + 1);
    expect(ok.value.buckets.counts.reduce((a, b) => a + b, 0)).toBe(3);
    const failed = point<Histogram>(server, { "rpc.method": "cart/fail" });
    expect(failed.attributes).toMatchObject({
      "error.type": "INTERNAL",
      "rpc.response.status_code": "INTERNAL",
    });
    expect(failed.value.count).toBe(1);

    const client = metric(rm, "@natsmesh/sdk", "rpc.client.call.duration");
    const sent = point<Histogram>(client, { "rpc.method": "cart/add", "error.type": undefined });
    expect(sent.value.count).toBe(3);
    // The caller's time holds the agent's, plus the network.
    expect(sent.value.sum).toBeGreaterThan(ok.value.sum!);
    const inflight = metric(rm, "@natsmesh/agent", "natsmesh.server.inflight");
    expect(inflight).toMatchObject({ dataPointType: DataPointType.SUM, isMonotonic: false });
    expect(point<number>(inflight, { "natsmesh.service": "cart" }).value).toBe(0);
    const rejections = metric(rm, "@natsmesh/agent", "natsmesh.server.rejections");
    expect(rejections).toMatchObject({ dataPointType: DataPointType.SUM, isMonotonic: true });

    // Cumulative: later calls add to the same series.
    await mesh.request("cart", "add", 9);
    rm = await exported();
    const later = point<Histogram>(metric(rm, "@natsmesh/agent", "rpc.server.call.duration"), {
      "rpc.method": "cart/add",
    });
    expect(later.value.count).toBe(4);
    expect(later.startTime).toEqual(ok.startTime);
    await provider.shutdown();
    metrics.disable();
  });

  it("merges agents of one service, and keeps a stopped agent's counts", async () => {
    const prefix = uniquePrefix("two");
    const options = {
      connection: t.nc,
      prefix,
      service: "stock",
      methods: { get: () => 1 },
    };
    const first = await startAgent(options);
    await using second = await startAgent(options);
    // Five calls to each instance, on its own subject.
    for (const a of [first, second]) {
      for (let i = 0; i < 5; i++) await t.nc.request(`${a.record.subject}.get`, "null");
    }
    const { provider, exported } = userSdk();
    const count = async () => {
      const m = metric(await exported(), "@natsmesh/agent", "rpc.server.call.duration");
      return point<Histogram>(m, { "rpc.method": "stock/get" }).value.count;
    };
    // One series for both instances, as one SDK instrument would have it.
    expect(await count()).toBe(10);
    await first.stop();
    expect(await count()).toBe(10);
    const rm = await exported();
    // What was in flight goes with the agent; the other one is still there.
    const inflight = metric(rm, "@natsmesh/agent", "natsmesh.server.inflight");
    expect(inflight.dataPoints.filter((p) => p.attributes["natsmesh.service"] === "stock")).toEqual(
      [expect.objectContaining({ value: 0 })],
    );
    await provider.shutdown();
  });

  it("refuses the meterProvider option that it replaces", async () => {
    const meterProvider = new MeterProvider();
    const options = { service: "x", methods: { a: () => 1 }, meterProvider };
    await expect(startAgent(options as Parameters<typeof startAgent>[0])).rejects.toThrow(
      /natsmeshMetricProducer\(\)/,
    );
    await expect(
      connectMesh({ connection: t.nc, meterProvider } as Parameters<typeof connectMesh>[0]),
    ).rejects.toThrow(TypeError);
  });
});
