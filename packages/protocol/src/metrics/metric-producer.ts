import { type HrTime, ValueType } from "@opentelemetry/api";
import type {
  CollectionResult,
  DataPoint,
  Histogram,
  MetricData,
  MetricProducer,
} from "@opentelemetry/sdk-metrics";
import { DURATION_BUCKETS_S } from "../telemetry-attributes.js";
import { meshMetrics } from "./mesh-metrics.js";
import { InstrumentKind, type ScopeReading } from "./metric-set.js";

type SdkMetrics = typeof import("@opentelemetry/sdk-metrics");
type Resources = typeof import("@opentelemetry/resources");

let otel: Promise<[SdkMetrics, Resources]> | undefined;

/**
 * The OpenTelemetry SDK packages, loaded the first time metrics are collected: only a user who
 * exports metrics has them, and natsmesh does not make everyone else install them.
 */
function loadOtel(): Promise<[SdkMetrics, Resources]> {
  otel ??= Promise.all([import("@opentelemetry/sdk-metrics"), import("@opentelemetry/resources")]);
  return otel;
}

function hrTime(ms: number): HrTime {
  return [Math.floor(ms / 1000), Math.round((ms % 1000) * 1e6)];
}

function toMetricData(sdk: SdkMetrics, readings: ScopeReading[], now: number) {
  const { AggregationTemporality, DataPointType } = sdk;
  const endTime = hrTime(now);
  const boundaries = [...DURATION_BUCKETS_S];
  return readings.map(({ scope, instruments }) => ({
    scope: { name: scope },
    metrics: instruments.map(({ descriptor: d, points }): MetricData => {
      const base = {
        descriptor: {
          name: d.name,
          description: d.description,
          unit: d.unit,
          valueType: d.kind === InstrumentKind.histogram ? ValueType.DOUBLE : ValueType.INT,
        },
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
      };
      if (d.kind === InstrumentKind.histogram) {
        const dataPoints: DataPoint<Histogram>[] = [];
        for (const p of points) {
          if (!("histogram" in p)) continue;
          const h = p.histogram;
          dataPoints.push({
            attributes: p.attrs,
            startTime: hrTime(h.startedAt),
            endTime,
            value: {
              buckets: { boundaries, counts: Array.from(h.counts) },
              sum: h.sum,
              count: h.count,
              min: h.min,
              max: h.max,
            },
          });
        }
        return { ...base, dataPointType: DataPointType.HISTOGRAM, dataPoints };
      }
      const dataPoints: DataPoint<number>[] = [];
      for (const p of points) {
        if (!("value" in p)) continue;
        dataPoints.push({
          attributes: p.attrs,
          startTime: hrTime(p.startedAt),
          endTime,
          value: p.value,
        });
      }
      return {
        ...base,
        dataPointType: DataPointType.SUM,
        isMonotonic: d.kind === InstrumentKind.counter,
        dataPoints,
      };
    }),
  }));
}

/**
 * A `MetricProducer` handing `read()`'s metrics to an OpenTelemetry `MetricReader` when it
 * collects, as cumulative data; the reader puts them under its own MeterProvider's resource.
 */
export function readingProducer(read: () => ScopeReading[]): MetricProducer {
  return {
    async collect(): Promise<CollectionResult> {
      const [sdk, resources] = await loadOtel();
      return {
        resourceMetrics: {
          resource: resources.emptyResource(),
          scopeMetrics: toMetricData(sdk, read(), Date.now()),
        },
        errors: [],
      };
    },
  };
}

/**
 * The metrics of every natsmesh agent and SDK mesh in this process (`rpc.server.call.duration`,
 * `rpc.client.call.duration`, …; see docs/observability.md), for an OpenTelemetry metric reader:
 *
 * ```ts
 * new PeriodicExportingMetricReader({ exporter, metricProducers: [natsmeshMetricProducer()] })
 * ```
 *
 * natsmesh records calls itself (a map lookup and a few additions) and hands the histograms and
 * counts over only when the reader collects, so the SDK does not hash attributes on every call.
 * Add it to one reader per exporter; agents and meshes started before or after are all read.
 */
export function natsmeshMetricProducer(): MetricProducer {
  return readingProducer(() => meshMetrics.read());
}
