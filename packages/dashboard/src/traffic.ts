import { LATENCY_BUCKETS, latencyQuantile, OTHER_ERRORS, StatsLimits } from "@natsmesh/protocol";
import { dict } from "./dict.js";
import type { EndpointSample, InstanceSample } from "./stats-reply.js";

/** A service's traffic over one interval between two polls. */
export interface ServicePoint {
  /** End of the interval, Unix epoch milliseconds. */
  at: number;
  /** Requests per second. */
  rps: number;
  /** Failed requests per second. */
  eps: number;
  /** Failed / all requests in the interval; `null` without requests. */
  errorRate: number | null;
  /** Median and 99th percentile of handling time, in milliseconds; `null` without requests. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Instances whose counters went into the point. */
  reporting: number;
  /** Failed requests in the interval by error code. */
  errors: Record<string, number>;
}

/** One instance's rate over the last interval. */
export interface InstanceRate {
  rps: number;
  errorRate: number | null;
}

interface Previous {
  /** Monotonic time of the sample, `performance.now()`. */
  at: number;
  endpoints: Map<string, EndpointSample>;
}

/**
 * Turns cumulative counters (what `$SRV.STATS` reports) into rates and percentiles: each poll
 * is compared with the previous sample of the same instance. An instance seen for the first
 * time, or whose counters went down (it reset), only sets the baseline.
 */
export class Traffic {
  readonly #previous = new Map<string, Previous>();
  readonly #history = new Map<string, ServicePoint[]>();
  readonly #historyPoints: number;

  /** Keeps the last `historyPoints` points per service. */
  constructor(historyPoints: number) {
    this.#historyPoints = historyPoints;
  }

  /**
   * Adds one poll of `service`: `samples` by instance id, taken at monotonic time `now`
   * (milliseconds) and wall time `at`. Returns the service's point and each instance's rate.
   */
  add(
    service: string,
    samples: ReadonlyMap<string, InstanceSample>,
    now: number,
    at: number,
  ): { point: ServicePoint; instances: Record<string, InstanceRate> } {
    const latency = new Float64Array(LATENCY_BUCKETS);
    const errors = new Map<string, number>();
    const instances = dict<InstanceRate>();
    let rps = 0;
    let eps = 0;
    let requests = 0;
    let failed = 0;
    let reporting = 0;
    for (const [id, sample] of samples) {
      const key = `${service}.${id}`;
      const before = this.#previous.get(key);
      this.#previous.set(key, {
        at: now,
        endpoints: new Map(sample.endpoints.map((e) => [e.name, e])),
      });
      const seconds = before === undefined ? 0 : (now - before.at) / 1000;
      if (before === undefined || seconds <= 0) continue;
      let r = 0;
      let f = 0;
      for (const e of sample.endpoints) {
        const old = before.endpoints.get(e.name);
        if (old === undefined || e.requests < old.requests || e.errors < old.errors) continue;
        r += e.requests - old.requests;
        f += e.errors - old.errors;
        addDelta(latency, e, old);
        addErrors(errors, e, old);
      }
      reporting++;
      requests += r;
      failed += f;
      rps += r / seconds;
      eps += f / seconds;
      instances[id] = { rps: r / seconds, errorRate: r === 0 ? null : f / r };
    }
    const p50 = latencyQuantile(latency, 0.5);
    const p99 = latencyQuantile(latency, 0.99);
    const point: ServicePoint = {
      at,
      rps,
      eps,
      errorRate: requests === 0 ? null : failed / requests,
      p50Ms: p50 === undefined ? null : p50 / 1000,
      p99Ms: p99 === undefined ? null : p99 / 1000,
      reporting,
      errors: toDict(errors),
    };
    if (reporting > 0) this.#push(service, point);
    return { point, instances };
  }

  /** The service's last points, oldest first. */
  history(service: string): readonly ServicePoint[] {
    return this.#history.get(service) ?? [];
  }

  /** Forgets an instance that went down. */
  forgetInstance(service: string, id: string): void {
    this.#previous.delete(`${service}.${id}`);
  }

  /** Forgets a service that has no instance left. */
  forgetService(service: string): void {
    this.#history.delete(service);
  }

  #push(service: string, point: ServicePoint): void {
    let points = this.#history.get(service);
    if (points === undefined) {
      points = [];
      this.#history.set(service, points);
    }
    points.push(point);
    if (points.length > this.#historyPoints) points.splice(0, points.length - this.#historyPoints);
  }
}

/** Adds the histogram growth of one endpoint; skipped if a bucket shrank (a reset). */
function addDelta(into: Float64Array, now: EndpointSample, before: EndpointSample): void {
  const a = now.data?.latency;
  const b = before.data?.latency;
  if (a === undefined || b === undefined) return;
  for (let i = 0; i < a.length; i++) if (a[i]! < b[i]!) return;
  for (let i = 0; i < a.length; i++) into[i]! += a[i]! - b[i]!;
}

function addErrors(into: Map<string, number>, now: EndpointSample, before: EndpointSample): void {
  const a = now.data?.errors;
  if (a === undefined) return;
  const b = before.data?.errors;
  for (const [name, n] of a) {
    const d = n - (b?.get(name) ?? 0);
    if (d <= 0) continue;
    // As many codes per service as an agent keeps per endpoint; the rest add up under OTHER.
    const code = into.has(name) || into.size < StatsLimits.maxErrorCodes ? name : OTHER_ERRORS;
    into.set(code, (into.get(code) ?? 0) + d);
  }
}

function toDict(map: ReadonlyMap<string, number>): Record<string, number> {
  const out = dict<number>();
  for (const [k, v] of map) out[k] = v;
  return out;
}
