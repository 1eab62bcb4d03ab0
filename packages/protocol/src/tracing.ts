import {
  type Context,
  context,
  type ProxyTracerProvider,
  propagation,
  ROOT_CONTEXT,
  type TextMapGetter,
  type Tracer,
  type TracerProvider,
  trace,
} from "@opentelemetry/api";
import { Header } from "./headers.js";
import { parseTraceparent } from "./trace-context.js";

const TRACEPARENT = Header.TraceParent.toLowerCase();

/**
 * Finds the tracer of a part: the provider it was given, else the global one of
 * `@opentelemetry/api`, looked at on every call (a provider registered after start still
 * counts) and `undefined` while none is registered, so the caller can skip tracing at the cost
 * of a property read.
 */
export class TracerSource {
  readonly #name: string;
  readonly #own: Tracer | undefined;
  #delegate: unknown;
  #tracer: Tracer | undefined;

  constructor(name: string, provider: TracerProvider | undefined) {
    this.#name = name;
    this.#own = provider?.getTracer(name);
  }

  tracer(): Tracer | undefined {
    if (this.#own !== undefined) return this.#own;
    const global = trace.getTracerProvider() as Partial<ProxyTracerProvider>;
    if (typeof global.getDelegate !== "function" || global.getDelegateTracer === undefined) {
      // Not the API's proxy: some other registration; use it as it is.
      return (global as TracerProvider).getTracer(this.#name);
    }
    const delegate = global.getDelegate();
    if (delegate !== this.#delegate) {
      this.#delegate = delegate;
      this.#tracer = global.getDelegateTracer(this.#name);
    }
    return this.#tracer;
  }
}

/**
 * The context a received request or event continues: what the registered propagators extract
 * from its headers (`traceparent`, `tracestate`, `baggage`); when none is registered, its W3C
 * `traceparent` read here, so a trace still joins up. `header` reads a header by lower-case name.
 */
export function extractTrace(header: (lowerName: string) => string | undefined): Context {
  const getter: TextMapGetter<undefined> = { keys: () => [], get: (_c, key) => header(key) };
  const extracted = propagation.extract(ROOT_CONTEXT, undefined, getter);
  if (trace.getSpanContext(extracted) !== undefined) return extracted;
  const p = parseTraceparent(header(TRACEPARENT));
  if (p === undefined) return extracted;
  return trace.setSpanContext(extracted, {
    traceId: p.traceId,
    spanId: p.parentId,
    traceFlags: Number.parseInt(p.flags, 16) & 1,
    isRemote: true,
  });
}

/**
 * The headers that carry `ctx` to a nested call or emit: what the registered propagators
 * inject, and at least a W3C `traceparent` when the context has a span.
 */
export function injectTrace(ctx: Context): Record<string, string> {
  const out: Record<string, string> = {};
  propagation.inject(ctx, out);
  const span = trace.getSpanContext(ctx);
  if (out[TRACEPARENT] === undefined && span !== undefined) {
    out[TRACEPARENT] = `00-${span.traceId}-${span.spanId}-0${span.traceFlags & 1}`;
  }
  return out;
}

/** The active context when it holds a span (a handler's own span, say), else `fallback`. */
export function activeOr(fallback: Context): Context {
  const active = context.active();
  return trace.getSpan(active) === undefined ? fallback : active;
}
