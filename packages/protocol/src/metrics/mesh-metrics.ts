import type { MetricAttributes } from "../telemetry-attributes.js";
import {
  DurationSeries,
  type InstrumentDescriptor,
  InstrumentKind,
  type MetricSet,
  type ReadingPoint,
  type ScopeReading,
} from "./metric-set.js";

/**
 * Most series one metric keeps once merged (the OpenTelemetry SDK's default cardinality limit);
 * the rest are pooled into one series with the attribute `otel.metric.overflow`, as the SDK does.
 */
export const MAX_SERIES_PER_METRIC = 2000;

const OVERFLOW: MetricAttributes = Object.freeze({ "otel.metric.overflow": "true" });

const keys = new WeakMap<MetricAttributes, string>();

/** The identity of an attribute set by content: objects made by two agents may be equal. */
function attributeKey(attrs: MetricAttributes): string {
  let key = keys.get(attrs);
  if (key === undefined) {
    key = JSON.stringify(Object.entries(attrs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    keys.set(attrs, key);
  }
  return key;
}

interface MergedInstrument {
  readonly descriptor: InstrumentDescriptor;
  readonly points: Map<string, ReadingPoint>;
}

function add(into: Map<string, ReadingPoint>, point: ReadingPoint): void {
  let key = attributeKey(point.attrs);
  let attrs = point.attrs;
  if (!into.has(key) && into.size >= MAX_SERIES_PER_METRIC) {
    key = attributeKey(OVERFLOW);
    attrs = OVERFLOW;
  }
  const known = into.get(key);
  if ("histogram" in point) {
    const h = known !== undefined && "histogram" in known ? known.histogram : new DurationSeries();
    if (known === undefined) h.startedAt = point.histogram.startedAt;
    h.merge(point.histogram);
    into.set(key, { attrs, histogram: h });
  } else {
    const before = known !== undefined && "value" in known ? known : undefined;
    into.set(key, {
      attrs,
      value: (before?.value ?? 0) + point.value,
      startedAt: Math.min(before?.startedAt ?? point.startedAt, point.startedAt),
    });
  }
}

/**
 * Readings merged by scope, metric name and attribute content: two agents of one service in a
 * process make one series per method and outcome, as instruments on one MeterProvider would.
 */
export function mergeReadings(readings: Iterable<ScopeReading>): ScopeReading[] {
  const scopes = new Map<string, Map<string, MergedInstrument>>();
  for (const reading of readings) {
    let metrics = scopes.get(reading.scope);
    if (metrics === undefined) {
      metrics = new Map();
      scopes.set(reading.scope, metrics);
    }
    for (const { descriptor, points } of reading.instruments) {
      let merged = metrics.get(descriptor.name);
      if (merged === undefined) {
        merged = { descriptor, points: new Map() };
        metrics.set(descriptor.name, merged);
      }
      for (const point of points) add(merged.points, point);
    }
  }
  return Array.from(scopes, ([scope, metrics]) => ({
    scope,
    instruments: Array.from(metrics.values(), (m) => ({
      descriptor: m.descriptor,
      points: [...m.points.values()],
    })),
  }));
}

/**
 * The metrics of every agent and SDK mesh of this process, read together when an exporter
 * collects. A stopped agent or closed mesh leaves its counts behind (they are cumulative, and
 * must not go backwards); what it had in flight goes with it.
 */
export class MeshMetrics {
  readonly #live = new Set<MetricSet>();
  #retired: ScopeReading[] = [];

  /** Starts reading `set` with the others. */
  add(set: MetricSet): void {
    this.#live.add(set);
  }

  /** Stops reading `set`, keeping its counts and histograms. Idempotent. */
  retire(set: MetricSet): void {
    if (!this.#live.delete(set)) return;
    const { scope, instruments } = set.read();
    const kept = instruments.filter((i) => i.descriptor.kind !== InstrumentKind.upDownCounter);
    this.#retired = mergeReadings([...this.#retired, { scope, instruments: kept }]);
  }

  /** Every scope's metrics now, merged. */
  read(): ScopeReading[] {
    return mergeReadings([...this.#retired, ...Array.from(this.#live, (s) => s.read())]);
  }
}

/** This process's metrics: what `natsmeshMetricProducer()` hands to the OpenTelemetry SDK. */
export const meshMetrics = new MeshMetrics();
