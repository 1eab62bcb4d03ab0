import { Match, type Msg } from "@nats-io/nats-core";
import { type Codec, Header, type InstanceRecord, type VerifiedToken } from "@natsmesh/protocol";
import { Attr, extractTrace, Telemetry, type TracerSource } from "@natsmesh/protocol/internal";
import { type Context, context, type Span, SpanKind, trace } from "@opentelemetry/api";
import type { Logger } from "pino";
import type { EndpointStats } from "./endpoint-stats.js";
import {
  endHandlerSpan,
  headerRecord,
  nestedMesh,
  nestedTraceHeaders,
  receivedTraceparent,
  receivedTracestate,
  spanTraceparent,
} from "./handler-context.js";
import type { NestedMesh } from "./options.js";

/** Verified claims of the caller's token. */
export type CallerClaims = VerifiedToken["claims"];

/** What a handler gets besides its payload. */
export interface RequestContext {
  readonly service: string;
  readonly method: string;
  /** The caller's verified token claims; `undefined` when auth is off. */
  readonly caller: CallerClaims | undefined;
  /** Aborts when the deadline passes or the agent gives up on the call while stopping. */
  readonly signal: AbortSignal;
  /**
   * Absolute deadline (Unix epoch ms): the caller's `Mesh-Deadline`, capped at the call's
   * arrival + the agent's `maxCallMs`; the cap when the caller sent none.
   */
  readonly deadline: number;
  /** Request headers (first value of each). */
  readonly headers: Readonly<Record<string, string>>;
  /** `Mesh-Attempt`: 1 for the first attempt. */
  readonly attempt: number;
  /** The `traceparent` of this call (the caller's, or a new trace when it sent none). */
  readonly traceparent: string;
  /** The agent's current record. */
  readonly instance: InstanceRecord;
  /** Logger bound to service, instance and method. */
  readonly log: Logger;
  /** Nested calls that inherit this call's deadline, signal and trace; needs the `mesh` option. */
  readonly mesh: NestedMesh;
}

/** Shared by every call of one agent. */
export interface CallScope {
  readonly service: string;
  readonly log: Logger;
  readonly mesh: NestedMesh | undefined;
  /** Where server spans come from; no tracer: none are made. */
  readonly tracing: TracerSource;
  record(): InstanceRecord;
}

/**
 * One call in flight. It is the handler's context and the dispatcher's bookkeeping at once, so a
 * call costs one object; the signal, logger, header record and trace are made only when a
 * handler asks (the headers are parsed then, not before).
 */
export class Call implements RequestContext {
  readonly method: string;
  readonly deadline: number;
  readonly attempt: number;
  /** Set by the dispatcher once the caller's token is verified. */
  caller: CallerClaims | undefined = undefined;
  /** Set once a reply has been sent, so a late handler result never answers twice. */
  done = false;
  /** Bytes charged to the in-flight budget while the call holds its slot. */
  cost = 0;
  /** The handler returned a promise: the dispatcher holds the call to its deadline. */
  pending = false;
  readonly msg: Msg;
  readonly codec: Codec;
  /** The method's stats, where the call's outcome is recorded. */
  readonly stats: EndpointStats;
  readonly startedAt: number;
  readonly #scope: CallScope;
  #controller: AbortController | undefined;
  #log: Logger | undefined;
  #headers: Readonly<Record<string, string>> | undefined;
  #traceparent: string | undefined;
  /** The server span and the context it runs in, when a tracer provider is registered. */
  #span: Span | undefined;
  #trace: Context | undefined;

  constructor(
    scope: CallScope,
    msg: Msg,
    method: string,
    codec: Codec,
    stats: EndpointStats,
    deadline: number,
    attempt: number,
    startedAt: number,
  ) {
    this.#scope = scope;
    this.msg = msg;
    this.method = method;
    this.codec = codec;
    this.stats = stats;
    this.deadline = deadline;
    this.attempt = attempt;
    this.startedAt = startedAt;
  }

  get service(): string {
    return this.#scope.service;
  }

  get instance(): InstanceRecord {
    return this.#scope.record();
  }

  /** True once the caller's deadline has passed. */
  get expired(): boolean {
    return Date.now() >= this.deadline;
  }

  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    if (this.expired) this.abortForDeadline();
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    this.#controller ??= new AbortController();
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
  }

  /**
   * Aborts the signal for the deadline, if a handler has taken it; one that has not is told by
   * the `signal` getter, which checks the deadline when it is first read.
   */
  abortForDeadline(): void {
    const controller = this.#controller;
    if (controller !== undefined && !controller.signal.aborted) {
      controller.abort(new DOMException("the call's deadline has passed", "TimeoutError"));
    }
  }

  get headers(): Readonly<Record<string, string>> {
    this.#headers ??= headerRecord(this.msg.headers);
    return this.#headers;
  }

  get traceparent(): string {
    this.#traceparent ??=
      spanTraceparent(this.#span) ?? receivedTraceparent(this.#received(Header.TraceParent));
    return this.#traceparent;
  }

  /**
   * Runs the handler: directly, or, with a tracer, inside a server span that continues the
   * caller's trace, as the active context, so the handler's own spans and nested calls join it.
   */
  run(handler: (payload: unknown, ctx: RequestContext) => unknown, payload: unknown): unknown {
    const tracer = this.#scope.tracing.tracer();
    if (tracer === undefined) return handler(payload, this);
    const parent = extractTrace((name) => this.#received(name));
    const rpcMethod = `${this.#scope.service}/${this.method}`;
    this.#span = tracer.startSpan(
      rpcMethod,
      {
        kind: SpanKind.SERVER,
        attributes: {
          [Attr.system]: Telemetry.system,
          [Attr.method]: rpcMethod,
          [Attr.attempt]: this.attempt,
        },
      },
      parent,
    );
    this.#trace = trace.setSpan(parent, this.#span);
    return context.with(this.#trace, handler, undefined, payload, this);
  }

  /** Ends the server span, if any, with the call's outcome: `code` when it failed. */
  endSpan(code: string | undefined, message?: string): void {
    const span = this.#span;
    if (span === undefined) return;
    this.#span = undefined;
    span.setAttribute(Attr.status, code ?? Telemetry.ok);
    endHandlerSpan(span, code, message);
  }

  /** A request header by name, whatever its case (Go's client sends "Traceparent"). */
  #received(name: string): string | undefined {
    const h = this.msg.headers;
    if (h === undefined) return undefined;
    return h.get(name) || h.get(name, Match.IgnoreCase) || undefined;
  }

  get log(): Logger {
    this.#log ??= this.#scope.log.child({ method: this.method, traceparent: this.traceparent });
    return this.#log;
  }

  get mesh(): NestedMesh {
    // Nested calls carry on the caller's `tracestate` too (with its valid `traceparent`), and
    // end by this call's deadline.
    const trace = () =>
      nestedTraceHeaders(
        this.#trace,
        this,
        receivedTracestate(this.#received(Header.TraceParent), this.#received(Header.TraceState)),
      );
    return nestedMesh(this.#scope.mesh, this, trace, this.deadline);
  }
}
