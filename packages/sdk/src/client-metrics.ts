import {
  Attr,
  type Counter,
  type DurationHistogram,
  InstrumentKind,
  type MetricAttributes,
  type MetricSet,
  RpcAttributes,
  Telemetry,
} from "@natsmesh/protocol/internal";

/** Name of the SDK's instrumentation scope (its meter, as OpenTelemetry exporters show it). */
export const SDK_METER = "@natsmesh/sdk";

/** Most distinct event names the published-events counter keeps apart; the rest share one. */
const MAX_EVENT_NAMES = 256;

const NO_ATTRIBUTES = Object.freeze({});

/**
 * The SDK's metrics, in its {@link MetricSet}: `rpc.client.call.duration` per service, method
 * and outcome, recorded once per logical call when it settles (its count is the calls and the
 * errors by code); retries and failovers as they happen; calls in flight, read only when the
 * metrics are read; events published. Attribute sets are made once and reused; a record is a
 * few map lookups and additions.
 */
export class ClientMetrics {
  readonly #duration: DurationHistogram;
  readonly #retries: Counter;
  readonly #failovers: Counter;
  readonly #published: Counter;
  readonly #rpc = new RpcAttributes();
  readonly #events = new Map<string, MetricAttributes>();

  constructor(set: MetricSet, inflight: () => number) {
    this.#duration = set.histogram({
      name: "rpc.client.call.duration",
      description:
        "Time a call took as its caller saw it, from mesh.request() to its result, retries included.",
      unit: "s",
      kind: InstrumentKind.histogram,
    });
    this.#retries = set.counter({
      name: "natsmesh.client.retries",
      description:
        "Attempts made again after a retryable failure (OVERLOADED, UNAVAILABLE, a timeout).",
      unit: "{attempt}",
      kind: InstrumentKind.counter,
    });
    this.#failovers = set.counter({
      name: "natsmesh.client.failovers",
      description: "Attempts moved to another instance because the chosen one had gone.",
      unit: "{attempt}",
      kind: InstrumentKind.counter,
    });
    this.#published = set.counter({
      name: "natsmesh.events.published",
      description: "Events emitted (stored by the stream) or broadcast, and failed emits.",
      unit: "{event}",
      kind: InstrumentKind.counter,
    });
    set.observe(
      {
        name: "natsmesh.client.inflight",
        description: "Calls and emits of this client not settled yet.",
        unit: "{call}",
        kind: InstrumentKind.upDownCounter,
      },
      (observe) => observe(inflight(), NO_ATTRIBUTES),
    );
  }

  /** Records a settled call; `code` is its `error.type` when it failed. */
  call(service: string, method: string, ms: number, code: string | undefined): void {
    const m = this.#rpc.of(service, method);
    this.#duration.record(code === undefined ? m.ok : m.failed(code), ms / 1000);
  }

  /** Counts a retry after an attempt failed with `code`. */
  retry(service: string, method: string, code: string): void {
    this.#retries.add(this.#rpc.of(service, method).failed(code));
  }

  /** Counts a move to another instance after "no responders". */
  failover(service: string, method: string): void {
    this.#failovers.add(this.#rpc.of(service, method).ok);
  }

  /** Counts one event published (`code` undefined) or refused. */
  published(event: string, mode: "durable" | "broadcast", code: string | undefined): void {
    this.#published.add(this.#eventAttributes(event, mode, code));
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
}
