import {
  Attr,
  type CallHistograms,
  DURATION_BUCKETS_S,
  MethodAttributes,
  type MetricAttributes,
  Telemetry,
} from "@natsmesh/protocol/internal";
import type { Histogram, Meter, ObservableResult } from "@opentelemetry/api";

/** Name of the agent's meter (the OpenTelemetry instrumentation scope). */
export const AGENT_METER = "@natsmesh/agent";
/** Name of the agent's tracer. */
export const AGENT_TRACER = "@natsmesh/agent";

/** What the observable instruments read when a reader collects. */
export interface ServerMetricSources {
  /** Calls holding a concurrency slot now. */
  inflight(): number;
  /** Calls refused `OVERLOADED` since start: for want of a slot, and for want of memory. */
  rejected(): { readonly concurrency: number; readonly memory: number };
}

/** Removes a callback that an observable instrument was given. */
type Unobserve = () => void;

/** The description of `rpc.server.call.duration`, wherever it is shown. */
export const SERVER_DURATION = {
  name: "rpc.server.call.duration",
  description: "Time from a request's arrival at the agent to its reply.",
  unit: "s",
} as const;

/**
 * The agent's call metrics: `rpc.server.call.duration` per method and outcome (so its count is
 * the calls and the errors by code), plus calls in flight and refusals, read from the agent's
 * own counters only when a reader collects. Recording a call is one histogram record with an
 * attribute set made once (nothing without a MeterProvider) and, with the Prometheus endpoint
 * on, a few additions to the endpoint's own histograms.
 */
export class ServerMetrics {
  readonly #duration: Histogram;
  readonly #local: CallHistograms | undefined;
  readonly #methods = new Map<string, MethodAttributes>();
  readonly #other = new MethodAttributes(Telemetry.otherMethod);
  readonly #unobserve: Unobserve[] = [];

  /**
   * `meters`: the user's meter first, then the Prometheus endpoint's, if any; `local`: the
   * endpoint's own duration histograms, which stand in for an instrument on its meter.
   */
  constructor(
    meters: readonly [Meter, ...Meter[]],
    local: CallHistograms | undefined,
    service: string,
    methods: Iterable<string>,
    sources: ServerMetricSources,
  ) {
    this.#local = local;
    this.#duration = meters[0].createHistogram(SERVER_DURATION.name, {
      description: SERVER_DURATION.description,
      unit: SERVER_DURATION.unit,
      advice: { explicitBucketBoundaries: [...DURATION_BUCKETS_S] },
    });
    for (const method of methods) {
      this.#methods.set(method, new MethodAttributes(`${service}/${method}`));
    }
    const serviceAttrs = Object.freeze({
      [Attr.system]: Telemetry.system,
      [Attr.service]: service,
    });
    const byReason = (reason: string) => Object.freeze({ ...serviceAttrs, [Attr.reason]: reason });
    const concurrency = byReason("concurrency");
    const memory = byReason("memory");
    for (const meter of meters) {
      const inflight = meter.createObservableUpDownCounter("natsmesh.server.inflight", {
        description: "Calls running in the agent's handlers now.",
        unit: "{call}",
      });
      const observeInflight = (r: ObservableResult<MetricAttributes>) =>
        r.observe(sources.inflight(), serviceAttrs);
      inflight.addCallback(observeInflight);
      const rejections = meter.createObservableCounter("natsmesh.server.rejections", {
        description:
          "Calls refused OVERLOADED: the concurrency limit was full, or the memory budget of requests in flight.",
        unit: "{call}",
      });
      const observeRejections = (r: ObservableResult<MetricAttributes>) => {
        const rejected = sources.rejected();
        r.observe(rejected.concurrency, concurrency);
        r.observe(rejected.memory, memory);
      };
      rejections.addCallback(observeRejections);
      this.#unobserve.push(
        () => inflight.removeCallback(observeInflight),
        () => rejections.removeCallback(observeRejections),
      );
    }
  }

  /** Records one answered call of `method` that took `ms`; `code` is its error, if it failed. */
  call(method: string, ms: number, code: string | undefined): void {
    const m = this.#methods.get(method) ?? this.#other;
    const attrs = code === undefined ? m.ok : m.failed(code);
    const seconds = ms / 1000;
    this.#duration.record(seconds, attrs);
    this.#local?.record(attrs, seconds);
  }

  /** Detaches the observable instruments, so a stopped agent is no longer read. */
  stop(): void {
    for (const unobserve of this.#unobserve) unobserve();
    this.#unobserve.length = 0;
  }
}
