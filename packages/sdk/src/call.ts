import type { Msg, NatsConnection } from "@nats-io/nats-core";
import {
  type Codec,
  codecs,
  type InstanceRecord,
  type MeshError,
  type Subjects,
} from "@natsmesh/protocol";
import {
  checkInt,
  checkPayloadSize,
  errorType,
  type MetricSet,
  type TokenProvider,
  type TracerSource,
  toMeshError,
} from "@natsmesh/protocol/internal";
import type { Span } from "@opentelemetry/api";
import { type Balance, type Balancer, checkBalance } from "./balancer.js";
import {
  checkIdempotencyKey,
  checkOwnToken,
  instanceFilter,
  isConstraint,
  meshToken,
  NO_FILTER,
  noMatchingInstance,
} from "./call-options.js";
import { CallTrace, endSpan } from "./call-trace.js";
import type { CallTracker } from "./call-tracker.js";
import type { ClientMetrics } from "./client-metrics.js";
import type { InstanceFilter } from "./filters.js";
import type { Link } from "./link.js";
import { checkCodec, type RequestOptions, type ResolvedMeshOptions } from "./options.js";
import type { PresenceCache } from "./presence-cache.js";
import type { QueueSubjects } from "./queue-subjects.js";
import { readReply } from "./read-reply.js";
import type { PendingReply, ReplyMux } from "./reply-mux.js";
import { isAscii, renderUserHeaders, requestHeaders } from "./request-headers.js";
import { retryDecision } from "./retry.js";
import { type MeshTokenLines, ownTokenLines, type TokenLines } from "./token-lines.js";

/** The refusal of a `Mesh-Token-Ref` the agent cannot resolve. */
function isUnknownRef(err: MeshError): boolean {
  return (
    err.code === "UNAUTHENTICATED" &&
    (err.data as { reason?: unknown } | undefined)?.reason === "unknown_ref"
  );
}

/** What every call of one mesh shares. */
export interface CallScope {
  readonly nc: NatsConnection;
  readonly mux: ReplyMux;
  readonly link: Link;
  readonly subjects: Subjects;
  /** The balanced-call subjects, built once per service and method. */
  readonly queueSubjects: QueueSubjects;
  readonly options: ResolvedMeshOptions;
  /** Presence view; `undefined` when the mesh runs with `presence: false`. */
  readonly presence: PresenceCache | undefined;
  readonly balancer: Balancer;
  /** The mesh's token, when it has one. */
  readonly token: TokenProvider | undefined;
  /** The header lines of the mesh's token, full and by reference. */
  readonly tokenLines: MeshTokenLines;
  readonly calls: CallTracker;
  /** Where every settled call, retry and failover is recorded. */
  readonly metrics: ClientMetrics;
  /** The set `metrics` records into, retired from the process's metrics on close. */
  readonly metricSet: MetricSet;
  /** Where attempt spans come from; no tracer: none are made. */
  readonly tracing: TracerSource;
}

const NO_OPTIONS: RequestOptions = Object.freeze({});

/**
 * Runs one logical call: target choice, attempts, retries, failover, deadline, cancellation.
 * Rejects (never throws) on invalid options, with a `TypeError`.
 */
export function call(
  scope: CallScope,
  service: string,
  method: string,
  payload: unknown,
  options: RequestOptions = NO_OPTIONS,
): Promise<unknown> {
  try {
    return new MeshCall(scope, service, method, payload, options).promise;
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * One logical call as a small state machine, so the common call costs one object and one
 * promise: the first attempt is published synchronously, the reply is decoded in the reply
 * subscription's callback and resolves the promise directly. Waiting (for a reconnect, the first
 * presence snapshot, a token, a retry's pause) happens only on the paths that need it.
 */
class MeshCall implements PendingReply {
  readonly promise: Promise<unknown>;
  /** Deadline of the attempt in flight, for the reply mux. */
  waitUntil = 0;
  readonly #scope: CallScope;
  readonly #service: string;
  readonly #method: string;
  /** The balanced-call subject, as bytes (see queue-subjects.ts). */
  readonly #queueSubject: Uint8Array;
  readonly #codec: Codec;
  readonly #data: Uint8Array;
  readonly #deadline: number;
  readonly #attemptTimeout: number;
  readonly #retries: number;
  readonly #strategy: Balance;
  readonly #filter: InstanceFilter;
  /** The filter has a version or metadata: the call never goes to the queue subject. */
  readonly #constrained: boolean;
  readonly #signal: AbortSignal | undefined;
  readonly #idempotent: boolean;
  readonly #idempotencyKey: string | undefined;
  /** Decides each attempt's trace headers, and makes its span when tracing. */
  readonly #trace: CallTrace;
  /** The span of the attempt in flight, when tracing. */
  #span: Span | undefined;
  /** When the call began (performance.now), for its duration. */
  readonly #started = performance.now();
  readonly #userLines: string;
  readonly #userAscii: boolean;
  /** The header lines of the call's token; `undefined` without one. */
  #credential: TokenLines | undefined;
  /** The attempt in flight carries the token by reference. */
  #sentRef = false;
  /** An agent did not know the reference: this call sends the token in full from now on. */
  #fullToken = false;
  #resolve!: (value: unknown) => void;
  #reject!: (err: unknown) => void;
  #onAbort: (() => void) | undefined;
  #attempt = 0;
  #retried = 0;
  #tried: Set<string> | undefined;
  /** Why the last attempt failed, for a constrained call that runs out of instances. */
  #lastError: MeshError | undefined;
  #target: InstanceRecord | undefined;
  /** When the attempt to `#target` was sent (performance.now), for least-loaded. */
  #sent = 0;
  /** Reply token of the attempt in flight; 0 when none is. */
  #token = 0;
  #pause: NodeJS.Timeout | undefined;
  #presenceWaited = false;
  #done = false;

  constructor(
    scope: CallScope,
    service: string,
    method: string,
    payload: unknown,
    options: RequestOptions,
  ) {
    const defaults = scope.options;
    this.#scope = scope;
    this.#service = service;
    this.#method = method;
    // Checks both names (TypeError) as it builds the subject.
    this.#queueSubject = scope.queueSubjects.of(service, method);
    const codec = codecs[options.codec === undefined ? defaults.codec : checkCodec(options.codec)];
    this.#codec = codec;
    const timeout =
      options.timeout === undefined
        ? defaults.timeoutMs
        : checkInt(options.timeout, "timeout", 1, 3_600_000);
    const retries =
      options.retries === undefined
        ? defaults.retries
        : checkInt(options.retries, "retries", 0, 100);
    this.#retries = retries;
    const strategy =
      options.balance === undefined ? defaults.balance : checkBalance(options.balance);
    const filter = instanceFilter(options);
    this.#filter = filter;
    // NATS' queue group cannot filter: a call with a filter picks from presence, uniformly as the
    // queue group does (docs/decisions.md).
    this.#strategy = strategy === "queue" && filter !== NO_FILTER ? "random" : strategy;
    this.#constrained = filter !== NO_FILTER && isConstraint(filter);
    if (this.#constrained && scope.presence === undefined) {
      throw new TypeError(
        "version and metadata filters need the presence view: this mesh was connected with presence: false",
      );
    }
    const { signal, idempotent = false } = options;
    this.#signal = signal;
    this.#idempotent = idempotent;
    signal?.throwIfAborted();

    const data = codec.encode(payload);
    const tooLarge = checkPayloadSize(data.length, scope.nc.info?.max_payload ?? 0);
    if (tooLarge !== undefined) throw tooLarge;
    this.#data = data;

    const start = Date.now();
    const deadline =
      options.deadline === undefined
        ? start + timeout
        : Math.min(
            checkInt(options.deadline, "deadline", 1, Number.MAX_SAFE_INTEGER),
            start + timeout,
          );
    this.#deadline = deadline;
    this.#attemptTimeout = idempotent
      ? options.attemptTimeout === undefined
        ? Math.max(1, Math.ceil((deadline - start) / (retries + 1)))
        : checkInt(options.attemptTimeout, "attemptTimeout", 1, 3_600_000)
      : Number.POSITIVE_INFINITY;
    const user = options.headers;
    this.#trace = CallTrace.of(scope.tracing, user);
    const lines = renderUserHeaders(user, this.#trace.traced);
    this.#userLines = lines;
    this.#userAscii = isAscii(lines);
    this.#idempotencyKey = idempotent ? checkIdempotencyKey(options.idempotencyKey) : undefined;
    const own = options.token === undefined ? undefined : checkOwnToken(options.token);
    const token = own === undefined ? meshToken(scope) : own;

    this.promise = new Promise<unknown>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    scope.calls.begin();
    if (signal !== undefined) {
      this.#onAbort = () => this.#fail(signal.reason);
      signal.addEventListener("abort", this.#onAbort, { once: true });
    }
    if (typeof token === "object") {
      token.then(
        (fetched) => {
          this.#credential = scope.tokenLines.of(fetched);
          this.#next();
        },
        (err: unknown) => this.#fail(err),
      );
    } else {
      if (token !== undefined) {
        this.#credential = own === undefined ? scope.tokenLines.of(token) : ownTokenLines(token);
      }
      this.#next();
    }
  }

  /** Sends the next attempt, or first waits for what it needs (connection, presence). */
  #next(): void {
    if (this.#done) return;
    const scope = this.#scope;
    try {
      if (!scope.link.up) {
        scope.link.waitUp(this.#deadline, this.#signal).then(
          () => this.#next(),
          (err: unknown) => this.#fail(err),
        );
        return;
      }
      let target: InstanceRecord | undefined;
      const presence = scope.presence;
      const strategy = this.#strategy;
      if (strategy !== "queue" && presence !== undefined) {
        if (!presence.ready && !this.#presenceWaited) {
          // Once per call, and bounded: without a snapshot the call falls back to the queue.
          this.#presenceWaited = true;
          // A constrained call cannot fall back to the queue: it waits for the view up to its deadline.
          const waitMs = this.#constrained ? Math.max(1, this.#deadline - Date.now()) : undefined;
          presence.whenReady(waitMs).then(
            () => this.#next(),
            (err: unknown) => this.#fail(err),
          );
          return;
        }
        const pick = (tried: Set<string> | undefined) =>
          scope.balancer.pick(
            strategy,
            this.#service,
            this.#method,
            presence.live(this.#service),
            this.#filter,
            tried,
          );
        target = pick(this.#tried);
        if (target === undefined && this.#constrained) {
          // Never the queue: the instances tried already (not found dead) may take a retry.
          if (this.#tried !== undefined) target = pick(undefined);
          if (target === undefined) {
            this.#fail(
              this.#lastError ?? noMatchingInstance(this.#service, this.#method, this.#filter),
            );
            return;
          }
        }
      }
      this.#target = target;
      const subject =
        target === undefined
          ? this.#queueSubject
          : scope.subjects.instance(this.#service, target.id, this.#method);
      const deadline =
        this.#attemptTimeout === Number.POSITIVE_INFINITY
          ? this.#deadline
          : Math.min(this.#deadline, Date.now() + this.#attemptTimeout);
      this.waitUntil = deadline;
      const token = this.#credential;
      this.#sentRef = token?.confirmed === true && !this.#fullToken;
      const attempt = ++this.#attempt;
      const [span, traceLines] = this.#trace.attempt(
        this.#service,
        this.#method,
        attempt,
        target?.id,
      );
      this.#span = span;
      const text = requestHeaders(
        this.#codec,
        deadline,
        attempt,
        traceLines,
        this.#idempotencyKey,
        token === undefined ? "" : this.#sentRef ? token.ref! : token.full,
        this.#userLines,
      );
      if (target !== undefined) {
        scope.balancer.started(target.id);
        this.#sent = performance.now();
      }
      try {
        this.#token = scope.mux.send(
          subject,
          this.#userAscii ? text : Buffer.from(text, "utf8"),
          this.#data,
          this,
        );
      } catch (thrown) {
        this.#attemptEnded();
        this.#retryOrFail(toMeshError(thrown));
      }
    } catch (err) {
      this.#fail(err);
    }
  }

  onReply(msg: Msg): void {
    this.#attemptEnded();
    let value: unknown;
    try {
      value = readReply(msg, this.#codec);
    } catch (err) {
      this.#retryOrFail(toMeshError(err));
      return;
    }
    // An agent verified the token sent in full and holds it now: later calls send its reference.
    const credential = this.#credential;
    if (!this.#sentRef && credential?.ref !== undefined) credential.confirmed = true;
    this.#succeed(value);
  }

  onNoReply(err: MeshError): void {
    this.#attemptEnded();
    this.#retryOrFail(err);
  }

  onClosed(err: MeshError): void {
    this.#attemptEnded();
    this.#fail(err);
  }

  /** The attempt in flight is over: no token to wait for, and least-loaded learns its time. */
  #attemptEnded(): void {
    this.#token = 0;
    const target = this.#target;
    if (target !== undefined) {
      this.#scope.balancer.finished(target.id, performance.now() - this.#sent);
    }
  }

  #retryOrFail(err: MeshError): void {
    this.#endSpan(err.code, err.message);
    const signal = this.#signal;
    if (signal?.aborted) {
      this.#fail(signal.reason);
      return;
    }
    if (this.#scope.mux.closed) {
      this.#fail(err);
      return;
    }
    if (this.#sentRef && isUnknownRef(err)) {
      // That agent has not verified the token (it started since, or dropped it): the call did
      // not run, so it goes again at once, same attempt, with the token in full.
      this.#fullToken = true;
      this.#attempt--;
      this.#next();
      return;
    }
    const target = this.#target;
    const decision = retryDecision(
      err,
      {
        direct: target !== undefined,
        idempotent: this.#idempotent,
        retried: this.#retried,
        retries: this.#retries,
        remainingMs: this.#deadline - Date.now(),
      },
      Math.random,
    );
    if (decision.action === "fail") {
      this.#fail(err);
      return;
    }
    this.#lastError = err;
    if (target !== undefined) {
      this.#tried ??= new Set();
      this.#tried.add(target.id);
    }
    if (decision.action === "next-instance") {
      // The instance is gone but presence does not know yet: hide it from later picks.
      this.#scope.presence?.markDown(this.#service, target!.id);
      this.#scope.metrics.failover(this.#service, this.#method);
      this.#next();
      return;
    }
    this.#retried++;
    this.#scope.metrics.retry(this.#service, this.#method, err.code);
    if (decision.pauseMs > 0) {
      this.#pause = setTimeout(() => {
        this.#pause = undefined;
        this.#next();
      }, decision.pauseMs);
    } else {
      this.#next();
    }
  }

  // The call's two ends: the one place where its outcome and duration are both known.
  #succeed(value: unknown): void {
    this.#endSpan(undefined);
    if (!this.#finish()) return;
    this.#record(undefined);
    this.#resolve(value);
  }

  #fail(err: unknown): void {
    const type = errorType(err);
    this.#endSpan(type, err instanceof Error ? err.message : undefined);
    if (!this.#finish()) return;
    this.#record(type);
    this.#reject(err);
  }

  #record(errorType: string | undefined): void {
    const ms = performance.now() - this.#started;
    this.#scope.metrics.call(this.#service, this.#method, ms, errorType);
  }

  /** Ends the attempt's span, if one is open. */
  #endSpan(code: string | undefined, message?: string): void {
    const span = this.#span;
    if (span === undefined) return;
    this.#span = undefined;
    endSpan(span, code, message);
  }

  /** Ends the call once; false when it had already ended. */
  #finish(): boolean {
    if (this.#done) return false;
    this.#done = true;
    if (this.#token !== 0) {
      // Given up while an attempt was in flight (aborted): its reply is no longer awaited.
      this.#scope.mux.cancel(this.#token);
      this.#attemptEnded();
    }
    if (this.#pause !== undefined) clearTimeout(this.#pause);
    if (this.#onAbort !== undefined) this.#signal!.removeEventListener("abort", this.#onAbort);
    this.#scope.calls.end();
    return true;
  }
}
