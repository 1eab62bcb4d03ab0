import { type Msg, type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import {
  type Codec,
  ContentType,
  codecs,
  errorReply,
  Header,
  MeshError,
  type VerifiedToken,
} from "@natsmesh/protocol";
import {
  checkPayloadSize,
  type DecodeLimits,
  decodeScanned,
  Publisher,
  rawReply,
  scanPayload,
  settledWithin,
  type ThrottledLog,
  toMeshError,
} from "@natsmesh/protocol/internal";
import { type AgentAuth, UNKNOWN_REF } from "./auth.js";
import { Call, type CallerClaims, type CallScope } from "./call.js";
import { DeadlineSweep } from "./deadline-sweep.js";
import { EndpointStats } from "./endpoint-stats.js";
import { ELEMENT_COST, type InflightBudget, PENDING_COST } from "./inflight-budget.js";
import { MethodNames } from "./method-names.js";
import type { Handler, ResolvedMethod } from "./options.js";
import type { ReplyGuard } from "./reply-guard.js";
import { type RequestFields, requestFields } from "./request-fields.js";
import type { ServerMetrics } from "./server-metrics.js";

export interface DispatcherOptions {
  connection: NatsConnection;
  methods: ReadonlyMap<string, ResolvedMethod>;
  concurrency: number;
  limits: DecodeLimits;
  budget: InflightBudget;
  maxCallMs: number;
  auth: AgentAuth | undefined;
  replies: ReplyGuard;
  /** Where runaway handlers are logged, rate-limited. */
  limitedLog: ThrottledLog;
  /** Called whenever a call is refused for want of room (slots or bytes). */
  onFull: () => void;
  /** Where every answered call is recorded. */
  metrics: ServerMetrics;
}

/**
 * Turns request messages into handler calls and replies: checks method, codec, deadline and
 * concurrency, runs the handler, encodes the reply in the request's codec and keeps per-method
 * stats. Everything here runs per request, so it avoids timers, closures and repeated parsing:
 * a call that a handler answers synchronously costs a counter, one clock read at arrival and
 * one for its stats, and nothing is tracked for it beyond the handler's return.
 */
export class Dispatcher {
  /** Calls holding a concurrency slot now. */
  active = 0;
  /**
   * Calls whose handler returned a promise that has not settled: the only calls that can
   * outlive the message that brought them, so the only ones the deadline sweep and drain() see.
   */
  readonly pending = new Set<Call>();
  readonly stats = new Map<string, EndpointStats>();
  readonly #scope: CallScope;
  readonly #nc: NatsConnection;
  readonly #publisher: Publisher;
  readonly #methods: ReadonlyMap<string, ResolvedMethod>;
  readonly #names: MethodNames;
  readonly #concurrency: number;
  readonly #limits: DecodeLimits;
  readonly #budget: InflightBudget;
  readonly #auth: AgentAuth | undefined;
  readonly #replies: ReplyGuard;
  #accepting = true;
  /** Calls whose token is being verified: not in flight yet, but drain() waits for them. */
  #verifying = 0;
  readonly #sweep: DeadlineSweep;
  readonly #maxCallMs: number;
  readonly #runaways: ThrottledLog;
  readonly #onFull: () => void;
  /** Handlers still running when their deadline (and the grace after it) passed. */
  runaway = 0;
  /** Calls refused `OVERLOADED` because every concurrency slot was taken. */
  rejectedConcurrency = 0;
  /** Calls refused `OVERLOADED` because the requests in flight held the memory budget. */
  rejectedMemory = 0;
  readonly #metrics: ServerMetrics;
  #idle: (() => void) | undefined;

  constructor(scope: CallScope, options: DispatcherOptions) {
    this.#scope = scope;
    this.#nc = options.connection;
    this.#publisher = new Publisher(options.connection);
    this.#methods = options.methods;
    this.#names = new MethodNames(options.methods.keys());
    this.#concurrency = options.concurrency;
    this.#limits = options.limits;
    this.#budget = options.budget;
    this.#auth = options.auth;
    this.#replies = options.replies;
    this.#maxCallMs = options.maxCallMs;
    this.#runaways = options.limitedLog;
    this.#onFull = options.onFull;
    this.#metrics = options.metrics;
    this.#sweep = new DeadlineSweep(this.pending, (call) => this.#abandon(call));
    for (const method of options.methods.keys()) this.stats.set(method, new EndpointStats());
  }

  /** Subscription callback for the service and instance subjects. */
  readonly onMessage = (err: Error | null, msg: Msg): void => {
    // Nothing is decoded, verified or run for a request whose answer could not be sent, or
    // must not be: its reply subject is the caller's choice, and only inboxes are answered.
    if (err !== null || !this.#replies.admits(msg)) return;
    try {
      this.#dispatch(msg);
    } catch (thrown) {
      // Nothing a peer sends may take the agent down; answer what can still be answered.
      this.#scope.log.error({ err: thrown }, "request dispatch failed");
      this.#replyError(msg, codecs.json, new MeshError("INTERNAL", "internal error"));
    }
  };

  #dispatch(msg: Msg): void {
    const startedAt = performance.now();
    const method = this.#names.of(msg);
    const fields = requestFields(msg, this.#auth !== undefined);
    const codec = fields.codec;
    if (codec === undefined) {
      const err = new MeshError(
        "BAD_REQUEST",
        "unsupported Content-Type: use application/json or application/msgpack",
      );
      this.#unrouted(msg, codecs.json, method, startedAt, err);
      return;
    }
    const entry = this.#methods.get(method);
    const auth = this.#auth;
    if (auth === undefined) {
      this.#route(msg, fields, codec, method, entry, startedAt, undefined);
      return;
    }
    // The token is checked before anything else is said, so a caller without one cannot even
    // learn which methods exist; an unknown method needs the scope `<service>.<method>`.
    const checked = auth.check(
      fields.authorization,
      fields.tokenRef,
      entry?.scope ?? [this.#scope.service, method],
    );
    if (checked instanceof Promise) {
      // Not in flight yet, but drain() must wait for it, and it holds its payload meanwhile:
      // a flood of tokens to verify is bounded by the same budget as running calls.
      const pending = msg.data.length + PENDING_COST;
      const refused = this.#budget.take(pending);
      if (refused !== undefined) {
        this.#full(refused, false);
        this.#unrouted(msg, codec, method, startedAt, refused);
        return;
      }
      this.#verifying++;
      checked.then(
        (result) => {
          this.#verified(pending);
          this.#authorized(msg, fields, codec, method, entry, startedAt, result);
          this.#checkIdle();
        },
        (err) => {
          this.#verified(pending);
          this.#authorized(msg, fields, codec, method, entry, startedAt, toMeshError(err));
          this.#checkIdle();
        },
      );
    } else {
      this.#authorized(msg, fields, codec, method, entry, startedAt, checked);
    }
  }

  #verified(pending: number): void {
    this.#budget.give(pending);
    this.#verifying--;
  }

  #authorized(
    msg: Msg,
    fields: RequestFields,
    codec: Codec,
    method: string,
    entry: ResolvedMethod | undefined,
    startedAt: number,
    result: VerifiedToken | MeshError,
  ): void {
    if (!(result instanceof MeshError)) {
      this.#route(msg, fields, codec, method, entry, startedAt, result.claims);
      return;
    }
    // An unknown token reference is not a failed call: the caller sends the token and calls again.
    if (result === UNKNOWN_REF) this.#replyError(msg, codec, result);
    else this.#unrouted(msg, codec, method, startedAt, result);
  }

  /** Finds the method and reads the call's headers; then admits it. */
  #route(
    msg: Msg,
    fields: RequestFields,
    codec: Codec,
    method: string,
    entry: ResolvedMethod | undefined,
    startedAt: number,
    caller: CallerClaims | undefined,
  ): void {
    if (entry === undefined) {
      this.#unrouted(
        msg,
        codec,
        method,
        startedAt,
        new MeshError("NOT_FOUND", `service ${this.#scope.service} has no method ${method}`),
      );
      return;
    }
    const stats = this.stats.get(method)!;
    const asked = fields.deadline;
    const attempt = fields.attempt;
    if (asked instanceof MeshError || attempt instanceof MeshError) {
      const err = asked instanceof MeshError ? asked : (attempt as MeshError);
      this.#reject(msg, codec, method, stats, startedAt, err);
      return;
    }
    // The caller's deadline is honoured up to the cap, and a call without one gets the cap: a
    // slot is never held longer than maxCallMs, whatever a caller asks for.
    const now = Date.now();
    const cap = now + this.#maxCallMs;
    const deadline = asked === undefined || asked > cap ? cap : asked;
    const call = new Call(this.#scope, msg, method, codec, stats, deadline, attempt, startedAt);
    call.caller = caller;
    this.#admit(call, entry, now);
  }

  /** Last checks before a handler runs: still accepting, deadline, concurrency, payload. */
  #admit(call: Call, entry: ResolvedMethod, now: number): void {
    if (!this.#accepting) {
      this.#refuse(call, new MeshError("UNAVAILABLE", "instance is draining"));
      return;
    }
    if (now >= call.deadline) {
      this.#refuse(
        call,
        new MeshError("DEADLINE_EXCEEDED", "the call's deadline passed before it ran"),
      );
      return;
    }
    if (this.active >= this.#concurrency) {
      this.#full(undefined, true);
      this.#refuse(
        call,
        new MeshError("OVERLOADED", `instance is running its limit of ${this.#concurrency} calls`),
      );
      return;
    }
    // The structure is checked before anything is decoded, so what decoding builds is bounded
    // (values, depth) and paid for from the in-flight budget first.
    const data = call.msg.data;
    const elements = scanPayload(call.codec, data, this.#limits);
    if (elements instanceof MeshError) {
      this.#refuse(call, elements);
      return;
    }
    const cost = data.length + elements * ELEMENT_COST;
    const refused = this.#budget.take(cost);
    if (refused !== undefined) {
      this.#full(refused, false);
      this.#refuse(call, refused);
      return;
    }
    let payload: unknown;
    try {
      payload = decodeScanned(call.codec, data);
    } catch (err) {
      this.#budget.give(cost);
      this.#refuse(call, toMeshError(err));
      return;
    }
    call.cost = cost;
    this.#run(call, entry.handler, payload);
  }

  /** Answers a call that never reached its handler. */
  #refuse(call: Call, err: MeshError): void {
    call.done = true;
    this.#replyCallError(call, err);
  }

  #run(call: Call, handler: Handler, payload: unknown): void {
    this.active++;
    let result: unknown;
    try {
      result = call.run(handler, payload);
    } catch (err) {
      this.#fail(call, err);
      return;
    }
    if (result instanceof Promise || typeof (result as PromiseLike<unknown>)?.then === "function") {
      // Only now can the call outlive this message: it is held to its deadline from here on.
      call.pending = true;
      this.pending.add(call);
      this.#sweep.start();
      (result as PromiseLike<unknown>).then(
        (value) => this.#succeed(call, value),
        (err) => this.#fail(call, err),
      );
    } else {
      this.#succeed(call, result);
    }
  }

  #succeed(call: Call, value: unknown): void {
    if (!this.#settle(call)) return;
    let data: Uint8Array;
    try {
      data = call.codec.encode(value);
    } catch (err) {
      this.#scope.log.error({ err, method: call.method }, "handler result cannot be encoded");
      this.#replyCallError(
        call,
        new MeshError("INTERNAL", "the handler's result cannot be encoded"),
      );
      return;
    }
    const tooLarge = checkPayloadSize(data.length, this.#maxPayload());
    if (tooLarge !== undefined) {
      this.#replyCallError(call, tooLarge);
      return;
    }
    this.#metrics.call(call.method, call.stats.record(call.startedAt, undefined), undefined);
    call.endSpan(undefined);
    // No header block: a success reply is in the request's codec, which the caller knows.
    try {
      // The reply guard let only messages with an inbox reply subject through; its bytes are
      // sent back as they came, never decoded.
      this.#publisher.publish(rawReply(call.msg) ?? call.msg.reply!, "", "", data);
    } catch (err) {
      this.#notSent(call.msg, err);
    }
  }

  #fail(call: Call, err: unknown): void {
    if (!this.#settle(call)) return;
    if (err instanceof MeshError) {
      this.#replyCallError(call, err);
      return;
    }
    if (Date.now() >= call.deadline) {
      // Typically the handler gave up on ctx.signal: the deadline, not the handler, failed the call.
      this.#replyCallError(
        call,
        new MeshError("DEADLINE_EXCEEDED", "the call's deadline passed while it ran"),
      );
      return;
    }
    // The detail stays in the log; the caller learns only that the handler failed.
    this.#scope.log.error({ err, method: call.method }, "handler threw");
    this.#replyCallError(call, new MeshError("INTERNAL", "internal error"));
  }

  /** Marks a call answered; false when it already was (a late result after a forced drain). */
  #settle(call: Call): boolean {
    if (call.done) return false;
    call.done = true;
    this.active--;
    if (call.pending) this.pending.delete(call);
    this.#budget.give(call.cost);
    this.#checkIdle();
    return true;
  }

  /**
   * Takes the slot back from a handler that did not settle by its deadline and the grace after
   * it: the caller gets `DEADLINE_EXCEEDED` now, and whatever the handler returns later is dropped.
   */
  #abandon(call: Call): void {
    if (!this.#settle(call)) return;
    this.runaway++;
    this.#runaways.warn(
      "runaway",
      { method: call.method, runaway: this.runaway },
      "a handler ignored its deadline and ctx.signal; its slot was taken back (watch ctx.signal in long handlers)",
    );
    this.#replyCallError(
      call,
      new MeshError("DEADLINE_EXCEEDED", "the call's deadline passed while it ran"),
    );
  }

  #replyCallError(call: Call, err: MeshError): void {
    call.endSpan(err.code, err.message);
    this.#reject(call.msg, call.codec, call.method, call.stats, call.startedAt, err);
  }

  /** Answers an error to a call of a method the agent has, counting it in its stats. */
  #reject(
    msg: Msg,
    codec: Codec,
    method: string,
    stats: EndpointStats,
    startedAt: number,
    err: MeshError,
  ): void {
    this.#metrics.call(method, stats.record(startedAt, err), err.code);
    this.#replyError(msg, codec, err);
  }

  /**
   * Answers an error to a call that may name a method the agent does not have: counted in the
   * method's stats when it exists; in the metrics either way (as `_OTHER` when it does not).
   */
  #unrouted(msg: Msg, codec: Codec, method: string, startedAt: number, err: MeshError): void {
    const stats = this.stats.get(method);
    if (stats !== undefined) {
      this.#reject(msg, codec, method, stats, startedAt, err);
      return;
    }
    this.#metrics.call(method, performance.now() - startedAt, err.code);
    this.#replyError(msg, codec, err);
  }

  /** Counts an `OVERLOADED` refusal (`refused`, or a full set of slots) and tells the agent. */
  #full(refused: MeshError | undefined, slots: boolean): void {
    if (slots) {
      this.rejectedConcurrency++;
      this.#metrics.rejected("concurrency");
    } else if (refused?.code === "OVERLOADED") {
      this.rejectedMemory++;
      this.#metrics.rejected("memory");
    } else return;
    this.#onFull();
  }

  #replyError(msg: Msg, codec: Codec, err: MeshError): void {
    const h = natsHeaders();
    const body = errorReply(err, h);
    if (codec === codecs.msgpack) h.set(Header.ContentType, ContentType.msgpack);
    let data: Uint8Array;
    try {
      data = codec.encode(body);
    } catch {
      // `data` the handler attached may not encode; the code and message always do.
      const { data: _dropped, ...plain } = body;
      data = codec.encode(plain);
    }
    if (checkPayloadSize(data.length + 1024, this.#maxPayload()) !== undefined) {
      const { data: _dropped, ...plain } = body;
      data = codec.encode(plain);
    }
    try {
      msg.respond(data, { headers: h });
    } catch (err) {
      this.#notSent(msg, err);
    }
  }

  #notSent(msg: Msg, err: unknown): void {
    // A closed connection or an oversized reply; the caller's deadline takes over.
    this.#scope.log.warn({ err, subject: msg.subject }, "reply could not be sent");
  }

  #maxPayload(): number {
    return this.#nc.info?.max_payload ?? 1024 * 1024;
  }

  #checkIdle(): void {
    if (this.active === 0 && this.#verifying === 0) this.#idle?.();
  }

  /** New calls are answered `UNAVAILABLE` from now on. */
  stopAccepting(): void {
    this.#accepting = false;
  }

  /**
   * Waits for in-flight calls up to `timeoutMs`; then aborts the rest and answers them
   * `UNAVAILABLE`. Resolves once nothing is in flight.
   */
  async drain(timeoutMs: number): Promise<void> {
    if (this.active > 0 || this.#verifying > 0) {
      const idle = new Promise<void>((resolve) => {
        this.#idle = resolve;
      });
      await settledWithin(idle, timeoutMs);
      this.#idle = undefined;
    }
    // The handler did start: `started` tells callers not to retry unless the call is idempotent.
    const unavailable = new MeshError("UNAVAILABLE", "instance stopped before the call finished", {
      data: { started: true },
    });
    for (const call of [...this.pending]) {
      call.abort(unavailable);
      if (this.#settle(call)) this.#replyCallError(call, unavailable);
    }
    this.#sweep.stop();
  }
}
