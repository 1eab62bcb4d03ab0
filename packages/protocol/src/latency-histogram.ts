/**
 * The latency histogram agents report in `$SRV.STATS` (`data.latency_us`), and the one scheme
 * its writers and readers share.
 *
 * Durations are whole microseconds. Below 4 µs each microsecond is a bucket; from 4 µs on, each
 * power of two is cut into four equal buckets: [4,5) [5,6) [6,7) [7,8) [8,10) [10,12) … so a
 * bucket is at most 25 % wide. Durations from 2^26 µs (about 67 s) on share the last bucket.
 * Recording is a few integer operations on a preallocated array.
 */

/** Number of buckets; the last one holds everything from {@link LATENCY_OVERFLOW_US} on. */
export const LATENCY_BUCKETS = 101;
/** Lower bound of the last bucket: 2^26 µs (67.1 s). */
export const LATENCY_OVERFLOW_US = 2 ** 26;

const LAST = LATENCY_BUCKETS - 1;

/** Index of the bucket holding a duration of `us` microseconds (any number; clamped). */
export function latencyBucket(us: number): number {
  if (us >= LATENCY_OVERFLOW_US) return LAST;
  // Negative and NaN land in the first bucket; `>>> 0` would wrap them to the top.
  if (!(us >= 0)) return 0;
  const u = us >>> 0;
  if (u < 4) return u;
  const e = 31 - Math.clz32(u);
  return ((e - 1) << 2) | ((u >>> (e - 2)) & 3);
}

/** Lower bound of bucket `index`, in microseconds (inclusive). */
export function latencyBucketLower(index: number): number {
  if (index < 4) return index;
  if (index >= LAST) return LATENCY_OVERFLOW_US;
  const e = (index >> 2) + 1;
  return (4 + (index & 3)) * 2 ** (e - 2);
}

/** Upper bound of bucket `index`, in microseconds (exclusive); `Infinity` for the last one. */
export function latencyBucketUpper(index: number): number {
  return index >= LAST ? Number.POSITIVE_INFINITY : latencyBucketLower(index + 1);
}

/**
 * The quantile `q` (0–1) of a histogram's counts (indexed by bucket), in microseconds,
 * interpolated linearly inside the bucket it falls in; the last bucket reports its lower bound.
 * `undefined` when the histogram is empty.
 */
export function latencyQuantile(counts: ArrayLike<number>, q: number): number | undefined {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  if (total === 0) return undefined;
  const rank = Math.min(Math.max(q, 0), 1) * total;
  let below = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i]!;
    if (n > 0 && below + n >= rank) {
      const lower = latencyBucketLower(i);
      if (i >= LAST) return lower;
      return lower + ((rank - below) / n) * (latencyBucketUpper(i) - lower);
    }
    below += n;
  }
  return latencyBucketLower(LAST);
}

/**
 * Counts of durations by bucket, cumulative since start. `record()` costs a multiplication, a
 * few integer operations and an array increment: no allocation.
 */
export class LatencyHistogram {
  readonly counts = new Float64Array(LATENCY_BUCKETS);

  /** Records a duration given in milliseconds (as `performance.now()` differences are). */
  recordMs(ms: number): void {
    this.counts[latencyBucket(ms * 1000)]!++;
  }

  /** The non-empty buckets as `[lower bound µs, count]` pairs, ascending: the wire form. */
  toWire(): [number, number][] {
    const out: [number, number][] = [];
    const c = this.counts;
    for (let i = 0; i < c.length; i++) if (c[i]! > 0) out.push([latencyBucketLower(i), c[i]!]);
    return out;
  }

  reset(): void {
    this.counts.fill(0);
  }
}
