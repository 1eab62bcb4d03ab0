import { DURATION_BUCKETS_S, type MetricAttributes } from "../telemetry-attributes.js";

/**
 * What an instrument is, in OpenTelemetry's terms: a histogram, a monotonic sum (counter) or a
 * non-monotonic sum (up-down counter, like calls in flight).
 */
export const InstrumentKind = {
  histogram: "histogram",
  counter: "counter",
  upDownCounter: "upDownCounter",
} as const;
export type InstrumentKind = (typeof InstrumentKind)[keyof typeof InstrumentKind];

/** Name, unit and description of one metric, as exporters show them. */
export interface InstrumentDescriptor {
  readonly name: string;
  readonly description: string;
  readonly unit: string;
  readonly kind: InstrumentKind;
}

/** One attribute set's cumulative histogram, in seconds, on {@link DURATION_BUCKETS_S}. */
export class DurationSeries {
  /** When the first value was recorded (Unix epoch ms): the series' start time. */
  startedAt = Date.now();
  count = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  /** Counts per bucket: `counts[i]` holds values ≤ `DURATION_BUCKETS_S[i]`, the last one the rest. */
  readonly counts = new Float64Array(DURATION_BUCKETS_S.length + 1);

  record(seconds: number): void {
    this.count++;
    this.sum += seconds;
    if (seconds < this.min) this.min = seconds;
    if (seconds > this.max) this.max = seconds;
    const bounds = DURATION_BUCKETS_S;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    this.counts[i]!++;
  }

  /** Adds `other` into this series (both cumulative). */
  merge(other: DurationSeries): void {
    this.startedAt = Math.min(this.startedAt, other.startedAt);
    this.count += other.count;
    this.sum += other.sum;
    this.min = Math.min(this.min, other.min);
    this.max = Math.max(this.max, other.max);
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
  }
}

/** One attribute set's cumulative count. */
export class CountSeries {
  startedAt = Date.now();
  value = 0;
}

/** Call durations by attribute set: a recording is a map lookup by the attribute object. */
export class DurationHistogram {
  readonly series = new Map<MetricAttributes, DurationSeries>();

  record(attrs: MetricAttributes, seconds: number): void {
    let s = this.series.get(attrs);
    if (s === undefined) {
      s = new DurationSeries();
      this.series.set(attrs, s);
    }
    s.record(seconds);
  }
}

/** A monotonic count by attribute set. */
export class Counter {
  readonly series = new Map<MetricAttributes, CountSeries>();

  add(attrs: MetricAttributes, n = 1): void {
    let s = this.series.get(attrs);
    if (s === undefined) {
      s = new CountSeries();
      this.series.set(attrs, s);
    }
    s.value += n;
  }
}

/** Reports current values when metrics are read: `observe(value, attributes)` per series. */
export type Observer = (observe: (value: number, attrs: MetricAttributes) => void) => void;

/** One point of a reading: a histogram series, or a number with its start time. */
export type ReadingPoint =
  | { readonly attrs: MetricAttributes; readonly histogram: DurationSeries }
  | { readonly attrs: MetricAttributes; readonly value: number; readonly startedAt: number };

/** One instrument's points as read now. */
export interface InstrumentReading {
  readonly descriptor: InstrumentDescriptor;
  readonly points: ReadingPoint[];
}

/** Everything one instrumentation scope (`@natsmesh/agent`, `@natsmesh/sdk`) holds now. */
export interface ScopeReading {
  readonly scope: string;
  readonly instruments: InstrumentReading[];
}

type Instrument =
  | { readonly descriptor: InstrumentDescriptor; readonly histogram: DurationHistogram }
  | { readonly descriptor: InstrumentDescriptor; readonly counter: Counter }
  | { readonly descriptor: InstrumentDescriptor; readonly observer: Observer };

/**
 * The metrics of one agent or one SDK mesh, recorded by natsmesh itself: a call costs a map
 * lookup and a few additions, where an OpenTelemetry SDK instrument hashes the attributes on
 * every record. They are read only when an exporter collects (see `natsmeshMetricProducer`), or
 * when the agent's Prometheus endpoint is scraped.
 */
export class MetricSet {
  /** The instrumentation scope the metrics are reported under. */
  readonly scope: string;
  readonly startedAt = Date.now();
  readonly #instruments: Instrument[] = [];

  constructor(scope: string) {
    this.scope = scope;
  }

  histogram(descriptor: InstrumentDescriptor): DurationHistogram {
    const histogram = new DurationHistogram();
    this.#instruments.push({ descriptor, histogram });
    return histogram;
  }

  counter(descriptor: InstrumentDescriptor): Counter {
    const counter = new Counter();
    this.#instruments.push({ descriptor, counter });
    return counter;
  }

  /** An instrument whose values `observer` reports when the metrics are read. */
  observe(descriptor: InstrumentDescriptor, observer: Observer): void {
    this.#instruments.push({ descriptor, observer });
  }

  /** Every instrument's points now (observers are called). */
  read(): ScopeReading {
    const instruments = this.#instruments.map((i): InstrumentReading => {
      const points: ReadingPoint[] = [];
      if ("histogram" in i) {
        for (const [attrs, histogram] of i.histogram.series) points.push({ attrs, histogram });
      } else if ("counter" in i) {
        for (const [attrs, s] of i.counter.series) {
          points.push({ attrs, value: s.value, startedAt: s.startedAt });
        }
      } else {
        const startedAt = this.startedAt;
        i.observer((value, attrs) => points.push({ attrs, value, startedAt }));
      }
      return { descriptor: i.descriptor, points };
    });
    return { scope: this.scope, instruments };
  }
}
