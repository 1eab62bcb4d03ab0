/**
 * What the two handler contexts, a call's (`call.ts`) and an event's (`events/event-context.ts`),
 * build the same way: the header record, the `traceparent`, the handler span's end, and
 * `ctx.mesh`, whose nested calls and emits inherit the handler's signal, trace and (for calls)
 * deadline. Plain functions over what the context already holds, so a call allocates nothing more.
 * @module
 */
import type { MsgHdrs } from "@nats-io/nats-core";
import { Header } from "@natsmesh/protocol";
import {
  Attr,
  activeOr,
  boundedTracestate,
  childTraceparent,
  injectTrace,
  parseTraceparent,
} from "@natsmesh/protocol/internal";
import { type Context, type Span, SpanStatusCode } from "@opentelemetry/api";
import type { NestedEmitOptions, NestedMesh, NestedRequestOptions } from "./options.js";

/** The first value of each header, frozen; built only when a handler asks for `ctx.headers`. */
export function headerRecord(h: MsgHdrs | undefined): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  if (h !== undefined) for (const [k, v] of h) if (v[0] !== undefined) out[k] = v[0];
  return Object.freeze(out);
}

/** The W3C `traceparent` of the handler's own span; `undefined` without one. */
export function spanTraceparent(span: Span | undefined): string | undefined {
  const own = span?.spanContext();
  return own === undefined ? undefined : `00-${own.traceId}-${own.spanId}-0${own.traceFlags & 1}`;
}

/** The `traceparent` the peer sent, or a new trace when it sent none or an invalid one (W3C). */
export function receivedTraceparent(sent: string | undefined): string {
  return sent !== undefined && parseTraceparent(sent) !== undefined ? sent : childTraceparent();
}

/**
 * The `tracestate` nested calls carry on: the peer's, only when it came with a valid
 * `traceparent`, cut down to W3C's 512 characters when longer. W3C Trace Context: a
 * `tracestate` without a valid `traceparent` belongs to no trace and is discarded, since the
 * handler then starts a new one.
 */
export function receivedTracestate(
  traceparent: string | undefined,
  tracestate: string | undefined,
): string | undefined {
  return tracestate !== undefined &&
    traceparent !== undefined &&
    parseTraceparent(traceparent) !== undefined
    ? boundedTracestate(tracestate)
    : undefined;
}

/**
 * The trace headers of nested calls and emits: with a handler span, the context active where
 * the nested call is made (a span the handler started) or else the handler span's, as the
 * propagators write it; without, the context's `traceparent`, and `tracestate` when given.
 */
export function nestedTraceHeaders(
  active: Context | undefined,
  ctx: { readonly traceparent: string },
  tracestate: string | undefined,
): Record<string, string> {
  if (active !== undefined) return injectTrace(activeOr(active));
  return tracestate === undefined
    ? { [Header.TraceParent]: ctx.traceparent }
    : { [Header.TraceParent]: ctx.traceparent, [Header.TraceState]: tracestate };
}

/** Ends a handler span: `code` (and `message`) when the handler failed. */
export function endHandlerSpan(span: Span, code: string | undefined, message?: string): void {
  if (code !== undefined) {
    span.setAttribute(Attr.errorType, code);
    span.setStatus({ code: SpanStatusCode.ERROR, ...(message === undefined ? {} : { message }) });
  }
  span.end();
}

/**
 * `ctx.mesh`: the agent's mesh, whose nested calls and emits default to the handler's signal and
 * trace headers, and whose calls end no later than `deadline` (the call's; none for events).
 * Throws a `TypeError` when the agent has no `mesh` option.
 */
export function nestedMesh(
  mesh: NestedMesh | undefined,
  ctx: { readonly signal: AbortSignal },
  trace: () => Record<string, string>,
  deadline: number | undefined,
): NestedMesh {
  if (mesh === undefined) {
    throw new TypeError("ctx.mesh needs the agent's `mesh` option (an SDK mesh from connectMesh)");
  }
  return {
    emit: (event, payload, options: NestedEmitOptions = {}) => {
      if (mesh.emit === undefined) {
        throw new TypeError("ctx.mesh.emit needs the agent's `mesh` option to be an SDK mesh");
      }
      return mesh.emit(event, payload, {
        ...options,
        signal: options.signal ?? ctx.signal,
        headers: { ...trace(), ...options.headers },
      });
    },
    request: (service, method, payload, options: NestedRequestOptions = {}) => {
      const nested: NestedRequestOptions = {
        ...options,
        signal: options.signal ?? ctx.signal,
        headers: { ...trace(), ...options.headers },
      };
      if (deadline !== undefined) {
        nested.deadline =
          options.deadline === undefined ? deadline : Math.min(options.deadline, deadline);
      }
      return mesh.request(service, method, payload, nested);
    },
  };
}
