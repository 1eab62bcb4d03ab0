import {
  Attr,
  DURATION_BUCKETS_S,
  type MetricAttributes,
  RpcAttributes,
  Telemetry,
} from "@natsmesh/protocol/internal";
import type { Counter, Histogram, Meter, ObservableResult } from "@opentelemetry/api";

/** Name of the SDK's meter (the OpenTelemetry instrumentation scope). */
export const SDK_METER = "@natsmesh/sdk";

/** Most distinct event names the published-events counter keeps apart; the rest share one. */
const MAX_EVENT_NAMES = 256;

const NO_ATTRIBUTES = Object.freeze({});

/**
 * The SDK's metrics: `rpc.client.call.duration` per service, method and outcome, recorded once
 * per logical call when it settles (its count is the calls and the errors by code); retries and
 * failovers as they happen; calls in flight, read only when a reader collects; events published.
 * Attribute sets are made once and reused; without a MeterProvider every record is a no-op.
 */
export class ClientMetrics {
  readonly #duration: Histogram;
  readonly #retries: Counter;
  readonly #failovers: Counter;
  readonly #published: Counter;
  readonly #rpc = new RpcAttributes();
  readonly #events = new Map<string, MetricAttributes>();
  readonly #unobserve: () => void;

  constructor(meter: Meter, inflight: () => number) {
    this.#duration = meter.createHistogram("rpc.client.call.duration", {
      description:
        "Time a call took as its caller saw it, from mesh.request() to its result, retries included.",
      unit: "s",
      advice: { explicitBucketBoundaries: [...DURATION_BUCKETS_S] },
    });
    this.#retries = meter.createCounter("natsmesh.client.retries", {
      description:
        "Attempts made again after a retryable failure (OVERLOADED, UNAVAILABLE, a timeout).",
      unit: "{attempt}",
    });
    this.#failovers = meter.createCounter("natsmesh.client.failovers", {
      description: "Attempts moved to another instance because the chosen one had gone.",
      unit: "{attempt}",
    });
    this.#published = meter.createCounter("natsmesh.events.published", {
      description: "Events emitted (stored by the stream) or broadcast, and failed emits.",
      unit: "{event}",
    });
    const gauge = meter.createObservableUpDownCounter("natsmesh.client.inflight", {
      description: "Calls and emits of this client not settled yet.",
      unit: "{call}",
    });
    const observe = (r: ObservableResult) => r.observe(inflight(), NO_ATTRIBUTES);
    gauge.addCallback(observe);
    this.#unobserve = () => gauge.removeCallback(observe);
  }

  /** Records a settled call; `code` is its `error.type` when it failed. */
  call(service: string, method: string, ms: number, code: string | undefined): void {
    const m = this.#rpc.of(service, method);
    this.#duration.record(ms / 1000, code === undefined ? m.ok : m.failed(code));
  }

  /** Counts a retry after an attempt failed with `code`. */
  retry(service: string, method: string, code: string): void {
    this.#retries.add(1, this.#rpc.of(service, method).failed(code));
  }

  /** Counts a move to another instance after "no responders". */
  failover(service: string, method: string): void {
    this.#failovers.add(1, this.#rpc.of(service, method).ok);
  }

  /** Counts one event published (`code` undefined) or refused. */
  published(event: string, mode: "durable" | "broadcast", code: string | undefined): void {
    this.#published.add(1, this.#eventAttributes(event, mode, code));
  }

  #eventAttributes(event: string, mode: string, code: string | undefined): MetricAttributes {
    const key = `${mode} ${code ?? ""} ${event}`;
    let attrs = this.#events.get(key);
    if (attrs !== undefined) return attrs;
    // Event names are the application's and may be made per entity: bounded, the rest pooled.
    const name = this.#events.size < MAX_EVENT_NAMES ? event : Telemetry.otherMethod;
    attrs = Object.freeze({
      [Attr.system]: Telemetry.system,
      [Attr.eventName]: name,
      [Attr.eventMode]: mode,
      ...(code === undefined ? {} : { [Attr.errorType]: code }),
    });
    if (this.#events.size < MAX_EVENT_NAMES) this.#events.set(key, attrs);
    return attrs;
  }

  /** Detaches the in-flight gauge, so a closed mesh is no longer read. */
  stop(): void {
    this.#unobserve();
  }
}
