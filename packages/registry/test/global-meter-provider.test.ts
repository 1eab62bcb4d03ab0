import { startRegistry } from "@natsmesh/registry";
import { cleanup, setup, type TestSetup, uniquePrefix } from "@natsmesh/testing";
import { metrics } from "@opentelemetry/api";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/** A reader collected on demand, as an exporter's would be. */
class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}

  async value(name: string): Promise<number | undefined> {
    const { resourceMetrics } = await this.collect();
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const m of scope.metrics) {
        if (m.descriptor.name === name) return m.dataPoints[0]?.value as number;
      }
    }
    return undefined;
  }
}

let t: TestSetup;
beforeAll(async () => {
  t = await setup();
});
afterAll(async () => {
  metrics.disable();
  await cleanup(t);
});

describe("the registry's metrics in a global MeterProvider", () => {
  it("reach a provider registered after the registry started, and move to a new one", async () => {
    await using registry = await startRegistry({
      servers: t.server.url,
      prefix: uniquePrefix("gmp"),
      http: { port: 0 },
      heartbeatTimeoutMs: 300,
    });
    await expect.poll(() => registry.isLeader, { timeout: 10_000 }).toBe(true);

    const first = new TestReader();
    const firstProvider = new MeterProvider({ readers: [first] });
    expect(metrics.setGlobalMeterProvider(firstProvider)).toBe(true);
    await expect.poll(() => first.value("natsmesh.registry.leader"), { timeout: 5000 }).toBe(1);

    metrics.disable();
    const second = new TestReader();
    const secondProvider = new MeterProvider({ readers: [second] });
    expect(metrics.setGlobalMeterProvider(secondProvider)).toBe(true);
    await expect.poll(() => second.value("natsmesh.registry.leader"), { timeout: 5000 }).toBe(1);
    await Promise.all([firstProvider.shutdown(), secondProvider.shutdown()]);
  });
});
