import { isValidErrorCode } from "./error-reply.js";
import { MeshError } from "./errors.js";
import { StatsLimits } from "./stats-data.js";

/**
 * Names and attribute sets of the metrics the agent and the SDK record, after OpenTelemetry's
 * RPC semantic conventions. Plain data: the packages that record hand these objects to
 * `@opentelemetry/api` instruments, which this package does not import.
 */
export const Telemetry = {
  /** `rpc.system.name` of every natsmesh call. */
  system: "natsmesh",
  /** `rpc.method` of a call to a method the agent does not have, and of methods past the bound. */
  otherMethod: "_OTHER",
  /** `rpc.response.status_code` of a call that succeeded. */
  ok: "OK",
  /** `error.type` of codes past the bound per method. */
  otherError: "_OTHER",
  /** Distinct `(service, method)` pairs one recorder keeps attribute sets for. */
  maxMethods: 1000,
  /** Distinct error codes per method; later ones are recorded as {@link Telemetry.otherError}. */
  maxErrorCodes: StatsLimits.maxErrorCodes,
} as const;

/** Attribute keys, as the conventions spell them. */
export const Attr = {
  system: "rpc.system.name",
  method: "rpc.method",
  status: "rpc.response.status_code",
  errorType: "error.type",
  service: "natsmesh.service",
  reason: "natsmesh.reason",
  eventName: "natsmesh.event.name",
  eventPattern: "natsmesh.event.pattern",
  eventMode: "natsmesh.event.mode",
  attempt: "natsmesh.attempt",
  instance: "natsmesh.instance",
} as const;

/**
 * Bucket boundaries of the call duration histograms, in seconds: from 100 µs (a call on one
 * machine) to 10 s. OpenTelemetry's default boundaries are meant for milliseconds and would put
 * every mesh call in the first bucket.
 */
export const DURATION_BUCKETS_S: readonly number[] = Object.freeze([
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/** One metric's attributes: frozen, made once, reused by every recording. */
export type MetricAttributes = Readonly<Record<string, string>>;

/** The attribute sets of one method's calls: one per outcome, made on first use. */
export class MethodAttributes {
  /** Attributes of a successful call. */
  readonly ok: MetricAttributes;
  readonly #method: string;
  readonly #failed = new Map<string, MetricAttributes>();

  constructor(rpcMethod: string) {
    this.#method = rpcMethod;
    this.ok = Object.freeze({
      [Attr.system]: Telemetry.system,
      [Attr.method]: rpcMethod,
      [Attr.status]: Telemetry.ok,
    });
  }

  /** Attributes of a call that failed with `code`; codes past the bound share one set. */
  failed(code: string): MetricAttributes {
    const known = this.#failed.get(code);
    if (known !== undefined) return known;
    // Codes come from handlers and, on the client, from replies: invalid or endless ones
    // must not grow the map or the metric's series.
    let key = isValidErrorCode(code) ? code : "INTERNAL";
    if (!this.#failed.has(key) && this.#failed.size >= Telemetry.maxErrorCodes) {
      key = Telemetry.otherError;
    }
    let attrs = this.#failed.get(key);
    if (attrs === undefined) {
      attrs = Object.freeze({
        [Attr.system]: Telemetry.system,
        [Attr.method]: this.#method,
        [Attr.status]: key,
        [Attr.errorType]: key,
      });
      this.#failed.set(key, attrs);
    }
    return attrs;
  }
}

/**
 * Attribute sets by service and method, at most {@link Telemetry.maxMethods} pairs; calls past
 * the bound are recorded as method {@link Telemetry.otherMethod}. Two map lookups per call, no
 * string built.
 */
export class RpcAttributes {
  readonly #services = new Map<string, Map<string, MethodAttributes>>();
  readonly #other = new MethodAttributes(Telemetry.otherMethod);
  #size = 0;

  of(service: string, method: string): MethodAttributes {
    let methods = this.#services.get(service);
    const known = methods?.get(method);
    if (known !== undefined) return known;
    if (this.#size >= Telemetry.maxMethods) return this.#other;
    if (methods === undefined) {
      methods = new Map();
      this.#services.set(service, methods);
    }
    const attrs = new MethodAttributes(`${service}/${method}`);
    methods.set(method, attrs);
    this.#size++;
    return attrs;
  }

  /** The set of calls to methods that do not exist. */
  get other(): MethodAttributes {
    return this.#other;
  }
}

/**
 * The `error.type` of something a call or handler failed with: a `MeshError`'s code, else the
 * class name of an `Error` (`Error`, `TypeError`, `AbortError`), as the conventions ask, else
 * {@link Telemetry.otherError}. Recorders bound how many distinct ones they keep.
 */
export function errorType(err: unknown): string {
  if (err instanceof MeshError) return err.code;
  if (err instanceof Error || err instanceof DOMException) {
    return isValidErrorCode(err.name) ? err.name : Telemetry.otherError;
  }
  return Telemetry.otherError;
}

/** Throws `TypeError` unless `provider` is absent or has the method `getter` (an option's check). */
export function checkProvider<T>(
  provider: T | undefined,
  getter: string,
  what: string,
): T | undefined {
  if (provider === undefined) return undefined;
  if (typeof (provider as Record<string, unknown> | null)?.[getter] !== "function") {
    throw new TypeError(
      `${what} must be an OpenTelemetry ${what[0]!.toUpperCase()}${what.slice(1)}`,
    );
  }
  return provider;
}

/**
 * Throws `TypeError` when `options` still carries `meterProvider`, an option until natsmesh kept
 * its own metrics: they reach an OpenTelemetry SDK through `natsmeshMetricProducer()` now.
 */
export function refuseMeterProvider(options: object): void {
  if ((options as { meterProvider?: unknown }).meterProvider === undefined) return;
  throw new TypeError(
    "meterProvider is not an option: natsmesh's metrics reach a MeterProvider through its reader, " +
      "new PeriodicExportingMetricReader({ exporter, metricProducers: [natsmeshMetricProducer()] })",
  );
}
