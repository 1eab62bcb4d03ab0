import { Header } from "@natsmesh/protocol";
import { Attr, Telemetry, type TracerSource } from "@natsmesh/protocol/internal";
import {
  type Context,
  context,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  trace,
} from "@opentelemetry/api";

import { outgoingTraceparent } from "./trace-headers.js";

/** Name of the SDK's tracer (the OpenTelemetry instrumentation scope). */
export const SDK_TRACER = "@natsmesh/sdk";

const TRACEPARENT = Header.TraceParent.toLowerCase();

/** A header of a caller's `headers` option by lower-case name, whatever the case it has there. */
function userHeader(headers: Record<string, string>, key: string): string | undefined {
  const exact = headers[key];
  if (exact !== undefined) return exact;
  for (const name in headers) if (name.toLowerCase() === key) return headers[name];
  return undefined;
}

/** Lets the registered propagators read a caller's `headers` option. */
const userHeaders: TextMapGetter<Record<string, string>> = {
  keys: (carrier) => Object.keys(carrier),
  get: userHeader,
};

/** Writes what a propagator injects as header lines. */
const headerLines: TextMapSetter<{ text: string; traceparent: boolean }> = {
  set: (carrier, key, value) => {
    // A propagator's values are header-safe by construction, but a custom one may not be:
    // a CR or LF would end the header block.
    if (/[\r\n]/.test(value) || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(key)) return;
    carrier.text += `${key}: ${value}\r\n`;
    if (key.toLowerCase() === TRACEPARENT) carrier.traceparent = true;
  },
};

/**
 * The trace headers of a call or an emit: the one place where the SDK decides what it sends.
 *
 * - No tracer provider registered: what `outgoingTraceparent` decides (a `traceparent` only when
 *   the caller propagates one, as nested calls do). `tracestate` and `baggage` the caller passed
 *   go out as the caller's own headers.
 * - A tracer provider registered: each attempt gets a span (client, or producer for an event),
 *   a child of the caller's `traceparent` header when it passed one, else of the active
 *   context; the propagators registered with `@opentelemetry/api` write its context
 *   (`traceparent`, `tracestate`, `baggage`). Without a registered propagator, `traceparent` is
 *   still written, so the agent continues the trace anyway.
 */
export class CallTrace {
  /** Every call made without a tracer and without a trace to continue: nothing to write. */
  static readonly #untraced = new CallTrace(undefined, undefined, "");
  readonly #tracer: Tracer | undefined;
  readonly #parent: Context | undefined;
  readonly #plain: string;

  private constructor(tracer: Tracer | undefined, parent: Context | undefined, plain: string) {
    this.#tracer = tracer;
    this.#parent = parent;
    this.#plain = plain;
  }

  /** Prepares the trace of one call; `user` is the caller's `headers` option. */
  static of(tracing: TracerSource, user: Record<string, string> | undefined): CallTrace {
    const tracer = tracing.tracer();
    if (tracer === undefined) {
      const traceparent = outgoingTraceparent(user);
      return traceparent === undefined
        ? CallTrace.#untraced
        : new CallTrace(undefined, undefined, `${Header.TraceParent}: ${traceparent}\r\n`);
    }
    const active = context.active();
    const parent =
      user !== undefined && userHeader(user, TRACEPARENT) !== undefined
        ? propagation.extract(active, user, userHeaders)
        : active;
    return new CallTrace(tracer, parent, "");
  }

  /** Whether spans are made: the caller's own trace headers are then replaced, not repeated. */
  get traced(): boolean {
    return this.#tracer !== undefined;
  }

  /** The client span of one attempt of a call, and the header lines that carry it. */
  attempt(
    service: string,
    method: string,
    attempt: number,
    instance: string | undefined,
  ): [Span | undefined, string] {
    if (this.#tracer === undefined) return [undefined, this.#plain];
    const rpcMethod = `${service}/${method}`;
    const attributes: Record<string, string | number> = {
      [Attr.system]: Telemetry.system,
      [Attr.method]: rpcMethod,
      [Attr.attempt]: attempt,
    };
    if (instance !== undefined) attributes[Attr.instance] = instance;
    return this.start(rpcMethod, SpanKind.CLIENT, attributes);
  }

  /** The producer span of an emit or broadcast, and the header lines that carry it. */
  publish(event: string, mode: string): [Span | undefined, string] {
    if (this.#tracer === undefined) return [undefined, this.#plain];
    return this.start(`send ${event}`, SpanKind.PRODUCER, {
      [Attr.system]: Telemetry.system,
      [Attr.eventName]: event,
      [Attr.eventMode]: mode,
    });
  }

  /**
   * Starts a span (`undefined` without a tracer) and returns it with the header lines that
   * carry it.
   */
  start(
    name: string,
    kind: SpanKind,
    attributes: Record<string, string | number>,
  ): [Span | undefined, string] {
    const tracer = this.#tracer;
    if (tracer === undefined) return [undefined, this.#plain];
    const parent = this.#parent!;
    const span = tracer.startSpan(name, { kind, attributes }, parent);
    const carrier = { text: "", traceparent: false };
    propagation.inject(trace.setSpan(parent, span), carrier, headerLines);
    if (!carrier.traceparent) {
      const c = span.spanContext();
      carrier.text += `${Header.TraceParent}: 00-${c.traceId}-${c.spanId}-0${c.traceFlags & 1}\r\n`;
    }
    return [span, carrier.text];
  }
}

/** Ends an attempt's span with its outcome: `code` is the error's, undefined on success. */
export function endSpan(span: Span | undefined, code: string | undefined, message?: string): void {
  if (span === undefined) return;
  if (code === undefined) {
    span.setAttribute(Attr.status, Telemetry.ok);
  } else {
    span.setAttribute(Attr.status, code);
    span.setAttribute(Attr.errorType, code);
    span.setStatus({ code: SpanStatusCode.ERROR, ...(message === undefined ? {} : { message }) });
  }
  span.end();
}
