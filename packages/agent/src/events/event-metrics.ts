import {
  Attr,
  type Counter,
  InstrumentKind,
  isValidErrorCode,
  type MetricAttributes,
  type MetricSet,
  Telemetry,
} from "@natsmesh/protocol/internal";

/** The attribute sets of one subscription: one per outcome, made on first use. */
class PatternAttributes {
  readonly ok: MetricAttributes;
  readonly #base: MetricAttributes;
  readonly #failed = new Map<string, MetricAttributes>();

  constructor(service: string, pattern: string, mode: string) {
    this.#base = Object.freeze({
      [Attr.system]: Telemetry.system,
      [Attr.service]: service,
      [Attr.eventPattern]: pattern,
      [Attr.eventMode]: mode,
    });
    this.ok = this.#base;
  }

  failed(code: string): MetricAttributes {
    let attrs = this.#failed.get(code);
    if (attrs !== undefined) return attrs;
    let key = isValidErrorCode(code) ? code : "INTERNAL";
    if (!this.#failed.has(key) && this.#failed.size >= Telemetry.maxErrorCodes) {
      key = Telemetry.otherError;
    }
    attrs = this.#failed.get(key) ?? Object.freeze({ ...this.#base, [Attr.errorType]: key });
    this.#failed.set(key, attrs);
    return attrs;
  }
}

/**
 * Counts what an agent's event subscriptions do, per subscription pattern: events handled (by
 * outcome), deliveries that were redeliveries, and events dead-lettered (by code). Attribute sets
 * are made once per pattern and outcome.
 */
export class EventMetrics {
  readonly #handled: Counter;
  readonly #redelivered: Counter;
  readonly #deadLettered: Counter;
  readonly #service: string;
  readonly #patterns = new Map<string, PatternAttributes>();

  constructor(set: MetricSet, service: string) {
    this.#service = service;
    this.#handled = set.counter({
      name: "natsmesh.events.handled",
      description: "Events whose handler ran, by outcome (error.type when it failed).",
      unit: "{event}",
      kind: InstrumentKind.counter,
    });
    this.#redelivered = set.counter({
      name: "natsmesh.events.redelivered",
      description: "Durable deliveries of events delivered before (a failure or a lost instance).",
      unit: "{event}",
      kind: InstrumentKind.counter,
    });
    this.#deadLettered = set.counter({
      name: "natsmesh.events.dead_lettered",
      description: "Durable events moved to the dead-letter stream, by error code.",
      unit: "{event}",
      kind: InstrumentKind.counter,
    });
  }

  #of(pattern: string, mode: string): PatternAttributes {
    let attrs = this.#patterns.get(pattern);
    if (attrs === undefined) {
      // Patterns are the agent's own subscriptions: a fixed, small set.
      attrs = new PatternAttributes(this.#service, pattern, mode);
      this.#patterns.set(pattern, attrs);
    }
    return attrs;
  }

  /** A handler finished (`code` undefined) or failed with `code`. */
  handled(pattern: string, mode: string, code: string | undefined): void {
    const p = this.#of(pattern, mode);
    const attrs = code === undefined ? p.ok : p.failed(code);
    this.#handled.add(attrs);
  }

  /** A durable event arrived again. */
  redelivered(pattern: string, mode: string): void {
    this.#redelivered.add(this.#of(pattern, mode).ok);
  }

  /** A durable event was stored in the dead-letter stream. */
  deadLettered(pattern: string, mode: string, code: string): void {
    this.#deadLettered.add(this.#of(pattern, mode).failed(code));
  }
}
