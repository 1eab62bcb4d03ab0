import type { MsgHdrs } from "@nats-io/nats-core";
import { type EventMode, Header, type InstanceRecord } from "@natsmesh/protocol";
import { Attr, extractTrace, Telemetry, type TracerSource } from "@natsmesh/protocol/internal";
import { type Context, context, type Span, SpanKind, trace } from "@opentelemetry/api";
import type { Logger } from "pino";
import type { CallerClaims } from "../call.js";
import {
  endHandlerSpan,
  headerRecord,
  nestedMesh,
  nestedTraceHeaders,
  receivedTraceparent,
  receivedTracestate,
  spanTraceparent,
} from "../handler-context.js";
import type { NestedMesh } from "../options.js";
import type { HeaderReader } from "./event-headers.js";
import type { EventMetrics } from "./event-metrics.js";

const TRACEPARENT = Header.TraceParent.toLowerCase();
const TRACESTATE = Header.TraceState.toLowerCase();

/** What a handler learns about the event it handles. */
export interface EventInfo {
  /** The event id (`Nats-Msg-Id`): the same on every delivery, so handlers can deduplicate. */
  readonly id: string;
  /** The event name, e.g. `order.created`. */
  readonly name: string;
  /** The subscription's pattern that matched, e.g. `order.*`. */
  readonly pattern: string;
  readonly mode: EventMode;
  /** Sequence in `<P>_events` (durable events); 0 for live ones. */
  readonly seq: number;
  /** Deliveries so far, this one included: 1 the first time. Always 1 for live events. */
  readonly deliveries: number;
  /** When the stream stored it (durable) or the instance received it (live), Unix epoch ms. */
  readonly publishedAt: number;
}

/** What an event handler gets besides its payload. */
export interface EventContext {
  readonly service: string;
  readonly event: EventInfo;
  /** The emitter's verified token claims; `undefined` when auth is off. */
  readonly caller: CallerClaims | undefined;
  /** Aborts at the handler's `timeoutMs`, or when the agent stops before the handler finished. */
  readonly signal: AbortSignal;
  /** The event's headers (first value of each). */
  readonly headers: Readonly<Record<string, string>>;
  /** The emitter's `traceparent`, or a new trace when it sent none. */
  readonly traceparent: string;
  /** The agent's current record. */
  readonly instance: InstanceRecord;
  /** Logger bound to service, instance and event. */
  readonly log: Logger;
  /** Nested calls that carry this event's signal and trace; needs the agent's `mesh` option. */
  readonly mesh: NestedMesh;
}

/** Shared by every event of one agent. */
export interface EventScope {
  readonly service: string;
  readonly log: Logger;
  readonly metrics: EventMetrics;
  /** Where consumer spans come from; no tracer: none are made. */
  readonly tracing: TracerSource;
  readonly mesh: NestedMesh | undefined;
  record(): InstanceRecord;
}

/** One event being handled: the handler's context and the consumer's bookkeeping at once. */
export class EventDelivery implements EventContext {
  readonly event: EventInfo;
  readonly caller: CallerClaims | undefined;
  /** When the handler must be done (Unix epoch ms). */
  readonly deadline: number;
  /** Last progress acknowledgement (durable), Unix epoch ms. */
  progressAt: number;
  readonly #scope: EventScope;
  readonly #message: { readonly headers?: MsgHdrs | undefined };
  readonly #header: HeaderReader;
  readonly #controller = new AbortController();
  #headers: Readonly<Record<string, string>> | undefined;
  #traceparent: string | undefined;
  #log: Logger | undefined;
  #expire: ((reason: unknown) => void) | undefined;
  /** The consumer span and the context it runs in, when a tracer provider is registered. */
  #span: Span | undefined;
  #trace: Context | undefined;

  constructor(
    scope: EventScope,
    event: EventInfo,
    caller: CallerClaims | undefined,
    message: { readonly headers?: MsgHdrs | undefined },
    header: HeaderReader,
    timeoutMs: number,
  ) {
    this.#scope = scope;
    this.event = event;
    this.caller = caller;
    this.#message = message;
    this.#header = header;
    const now = Date.now();
    this.deadline = now + timeoutMs;
    this.progressAt = now;
  }

  get service(): string {
    return this.#scope.service;
  }

  get instance(): InstanceRecord {
    return this.#scope.record();
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get headers(): Readonly<Record<string, string>> {
    this.#headers ??= headerRecord(this.#message.headers);
    return this.#headers;
  }

  get traceparent(): string {
    this.#traceparent ??=
      spanTraceparent(this.#span) ?? receivedTraceparent(this.#header(TRACEPARENT));
    return this.#traceparent;
  }

  /**
   * Runs the handler: directly, or, with a tracer, inside a consumer span that continues the
   * emitter's trace, as the active context, so the handler's spans and nested calls join it.
   */
  run(handler: (payload: unknown, ctx: EventContext) => unknown, payload: unknown): unknown {
    const tracer = this.#scope.tracing.tracer();
    if (tracer === undefined) return handler(payload, this);
    const parent = extractTrace(this.#header);
    const e = this.event;
    this.#span = tracer.startSpan(
      `process ${e.name}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          [Attr.system]: Telemetry.system,
          [Attr.service]: this.#scope.service,
          [Attr.eventName]: e.name,
          [Attr.eventPattern]: e.pattern,
          [Attr.eventMode]: e.mode,
          "natsmesh.event.id": e.id,
          "natsmesh.event.deliveries": e.deliveries,
        },
      },
      parent,
    );
    this.#trace = trace.setSpan(parent, this.#span);
    return context.with(this.#trace, handler, undefined, payload, this);
  }

  /** Ends the consumer span, if any: `code` when the handler failed. */
  endSpan(code: string | undefined, message?: string): void {
    const span = this.#span;
    if (span === undefined) return;
    this.#span = undefined;
    endHandlerSpan(span, code, message);
  }

  get log(): Logger {
    this.#log ??= this.#scope.log.child({
      event: this.event.name,
      eventId: this.event.id,
      traceparent: this.traceparent,
    });
    return this.#log;
  }

  get mesh(): NestedMesh {
    // Nested calls carry on the emitter's `tracestate` too (with its valid `traceparent`), as a
    // call's do, and no deadline.
    const trace = () =>
      nestedTraceHeaders(
        this.#trace,
        this,
        receivedTracestate(this.#header(TRACEPARENT), this.#header(TRACESTATE)),
      );
    return nestedMesh(this.#scope.mesh, this, trace, undefined);
  }

  /**
   * Settles with the handler's pending result, or rejects with `reason` as soon as
   * {@link abort} is called (the handler may go on running; its result is then ignored).
   */
  race(result: PromiseLike<unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#expire = reject;
      result.then(resolve, reject);
    });
  }

  /** Aborts `ctx.signal` and ends {@link run} with `reason`. */
  abort(reason: unknown): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
    this.#expire?.(reason);
  }
}
