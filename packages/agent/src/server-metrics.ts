import {
  Attr,
  type Counter,
  type DurationHistogram,
  InstrumentKind,
  MethodAttributes,
  type MetricSet,
  Telemetry,
} from "@natsmesh/protocol/internal";

/** Name of the agent's instrumentation scope (its meter, as OpenTelemetry exporters show it). */
export const AGENT_METER = "@natsmesh/agent";
/** Name of the agent's tracer. */
export const AGENT_TRACER = "@natsmesh/agent";

/** The description of `rpc.server.call.duration`, wherever it is shown. */
export const SERVER_DURATION = {
  name: "rpc.server.call.duration",
  description: "Time from a request's arrival at the agent to its reply.",
  unit: "s",
  kind: InstrumentKind.histogram,
} as const;

/** Why a call was refused `OVERLOADED`. */
export type Rejection = "concurrency" | "memory";

/**
 * The agent's call metrics, in its {@link MetricSet}: `rpc.server.call.duration` per method and
 * outcome (so its count is the calls and the errors by code), refusals by reason, and calls in
 * flight (read from `inflight` only when the metrics are read). Recording a call is two map
 * lookups and a few additions; the attribute sets are made once.
 */
export class ServerMetrics {
  readonly #duration: DurationHistogram;
  readonly #rejections: Counter;
  readonly #methods = new Map<string, MethodAttributes>();
  readonly #other = new MethodAttributes(Telemetry.otherMethod);
  readonly #byReason: Readonly<Record<Rejection, Readonly<Record<string, string>>>>;

  constructor(set: MetricSet, service: string, methods: Iterable<string>, inflight: () => number) {
    this.#duration = set.histogram(SERVER_DURATION);
    for (const method of methods) {
      this.#methods.set(method, new MethodAttributes(`${service}/${method}`));
    }
    const serviceAttrs = Object.freeze({
      [Attr.system]: Telemetry.system,
      [Attr.service]: service,
    });
    const byReason = (reason: Rejection) =>
      Object.freeze({ ...serviceAttrs, [Attr.reason]: reason });
    this.#byReason = { concurrency: byReason("concurrency"), memory: byReason("memory") };
    set.observe(
      {
        name: "natsmesh.server.inflight",
        description: "Calls running in the agent's handlers now.",
        unit: "{call}",
        kind: InstrumentKind.upDownCounter,
      },
      (observe) => observe(inflight(), serviceAttrs),
    );
    this.#rejections = set.counter({
      name: "natsmesh.server.rejections",
      description:
        "Calls refused OVERLOADED: the concurrency limit was full, or the memory budget of requests in flight.",
      unit: "{call}",
      kind: InstrumentKind.counter,
    });
    // Shown as 0 before the first refusal, so a rate over them starts from the agent's start.
    for (const attrs of Object.values(this.#byReason)) this.#rejections.add(attrs, 0);
  }

  /** Records one answered call of `method` that took `ms`; `code` is its error, if it failed. */
  call(method: string, ms: number, code: string | undefined): void {
    const m = this.#methods.get(method) ?? this.#other;
    this.#duration.record(code === undefined ? m.ok : m.failed(code), ms / 1000);
  }

  /** Counts a call refused `OVERLOADED`. */
  rejected(reason: Rejection): void {
    this.#rejections.add(this.#byReason[reason]);
  }
}
