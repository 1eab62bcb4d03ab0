import { DURATION_BUCKETS_S, type MetricAttributes } from "./telemetry-attributes.js";

/** One attribute set's cumulative histogram, in seconds, on {@link DURATION_BUCKETS_S}. */
export class DurationSeries {
  count = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  /** Counts per bucket: `counts[i]` holds values ≤ `DURATION_BUCKETS_S[i]`, the last one the rest. */
  readonly counts = new Float64Array(DURATION_BUCKETS_S.length + 1);
}

/**
 * Cumulative call-duration histograms by attribute set, kept by the part that records them:
 * a recording is a map lookup by the attribute object (made once, see `MethodAttributes`) and a
 * few additions, against a microsecond or more through an OpenTelemetry SDK's histogram (which
 * hashes the attributes on every record). A Prometheus endpoint reads them when scraped.
 */
export class CallHistograms {
  /** When counting began (Unix epoch ms): the start time of every series. */
  readonly startedAt = Date.now();
  readonly #series = new Map<MetricAttributes, DurationSeries>();

  record(attrs: MetricAttributes, seconds: number): void {
    let s = this.#series.get(attrs);
    if (s === undefined) {
      s = new DurationSeries();
      this.#series.set(attrs, s);
    }
    s.count++;
    s.sum += seconds;
    if (seconds < s.min) s.min = seconds;
    if (seconds > s.max) s.max = seconds;
    const bounds = DURATION_BUCKETS_S;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    s.counts[i]!++;
  }

  /** Every series recorded so far (bounded by the attribute sets, themselves bounded). */
  entries(): IterableIterator<[MetricAttributes, DurationSeries]> {
    return this.#series.entries();
  }
}
