import type {
  Consumer,
  ConsumerMessages,
  JetStreamClient,
  JetStreamManager,
  JsMsg,
} from "@nats-io/jetstream";
import { EventMode, isMeshError, MeshError, type Subjects } from "@natsmesh/protocol";
import { type DecodeLimits, errorType, type ThrottledLog } from "@natsmesh/protocol/internal";
import type { AgentAuth } from "../auth.js";
import type { CallerClaims } from "../call.js";
import { AckBatch } from "./ack-batch.js";
import { consumerConfig, ensureConsumer } from "./consumer-config.js";
import type { DeadLetterer } from "./dead-letterer.js";
import { admitEvent, decodeEvent } from "./event-admission.js";
import { EventDelivery, type EventScope } from "./event-context.js";
import { coreMessage, eventHeaders, type HeaderReader, headersOf } from "./event-headers.js";
import { type EventInput, readEventInput } from "./event-input.js";
import type { ResolvedEventHandler } from "./event-options.js";
import { isThenable, RunningHandlers, STOPPING, timedOut } from "./running-handlers.js";

/** What every durable consumer of one agent shares. */
export interface DurableScope {
  readonly events: EventScope;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly stream: string;
  readonly subjects: Subjects;
  readonly auth: AgentAuth | undefined;
  readonly deadLetterer: DeadLetterer;
  /** Largest event payload handled; larger ones are dead-lettered. */
  readonly maxBytes: number;
  /** What decoding a payload may build, as for requests. */
  readonly limits: DecodeLimits;
  readonly limiter: ThrottledLog;
}

/** Most events asked for in one pull request. */
const MAX_BATCH = 256;
/** Pull requests one consumer keeps open at once. */
const MAX_FETCHES = 4;
/** How long a pull request waits at the server for events. */
const FETCH_EXPIRES_MS = 5000;
/** A pull that ends sooner than this with nothing is treated as a failure (no busy loop). */
const MIN_FETCH_MS = 100;
/** Longest pause between attempts to pull again after failures. */
const MAX_RETRY_MS = 10_000;

/**
 * One durable subscription of one instance: pulls from the service's shared consumer no more
 * events than it has free handler slots, runs them, acknowledges success, asks for a delayed
 * redelivery after a failure, and dead-letters what must not or cannot be retried. Running
 * handlers keep their events with progress acknowledgements and are bounded by `timeoutMs`.
 */
export class DurableConsumer {
  readonly #s: DurableScope;
  readonly #h: ResolvedEventHandler;
  readonly #config: ReturnType<typeof consumerConfig>;
  readonly #refill: number;
  readonly #handlers = new RunningHandlers<JsMsg>();
  readonly #acks = new AckBatch();
  readonly #iters = new Set<ConsumerMessages>();
  #consumer: Consumer | undefined;
  #free: number;
  #fetches = 0;
  #paused = false;
  #failures = 0;
  #stopping = false;
  #retry: NodeJS.Timeout | undefined;
  #sweep: NodeJS.Timeout | undefined;

  constructor(scope: DurableScope, handler: ResolvedEventHandler) {
    this.#s = scope;
    this.#h = handler;
    this.#config = consumerConfig(scope.events.service, handler, scope.subjects);
    this.#free = handler.concurrency;
    // Ask for more once half the slots are free: fewer, larger pulls under load.
    this.#refill = Math.max(1, Math.ceil(handler.concurrency / 2));
  }

  /** The durable consumer's name. */
  get name(): string {
    return this.#config.durable_name;
  }

  /** Creates or finds the consumer; rejects when JetStream cannot be reached. */
  async open(): Promise<void> {
    const { created, differences } = await ensureConsumer(
      this.#s.jsm,
      this.#s.stream,
      this.#config,
    );
    const log = this.#s.events.log;
    if (created) log.info({ consumer: this.name, pattern: this.#h.pattern }, "created consumer");
    if (differences.length > 0) {
      log.warn(
        { consumer: this.name, differences },
        "the consumer exists with other settings; using it as it is",
      );
    }
    this.#consumer = await this.#s.js.consumers.get(this.#s.stream, this.name);
  }

  /** Starts pulling. */
  start(): void {
    const every = Math.min(1000, Math.floor(this.#h.ackWaitMs / 3));
    this.#sweep = setInterval(() => this.#sweepRunning(), every);
    this.#sweep.unref();
    this.#pump();
  }

  /** Pulls again after pulling held off (the agent had no key set to check events with). */
  resume(): void {
    this.#pump();
  }

  #pump(): void {
    if (this.#stopping || this.#paused || this.#consumer === undefined) return;
    // Without keys every event would fail its token check: leave them in the stream meanwhile.
    if (this.#s.auth?.ready === false) return;
    while (
      this.#free > 0 &&
      this.#fetches < MAX_FETCHES &&
      (this.#fetches === 0 || this.#free >= this.#refill)
    ) {
      const batch = Math.min(this.#free, MAX_BATCH);
      this.#free -= batch;
      this.#fetches++;
      void this.#fetch(this.#consumer, batch);
    }
  }

  async #fetch(consumer: Consumer, batch: number): Promise<void> {
    const started = performance.now();
    let received = 0;
    let iter: ConsumerMessages | undefined;
    let failed: unknown;
    try {
      iter = await consumer.fetch({ max_messages: batch, expires: FETCH_EXPIRES_MS });
      this.#iters.add(iter);
      for await (const m of iter) {
        received++;
        this.#deliver(m);
      }
      if (received === 0 && performance.now() - started < MIN_FETCH_MS && !this.#stopping) {
        failed = new Error("the pull request ended at once without events");
      }
    } catch (err) {
      failed = err;
    } finally {
      if (iter !== undefined) this.#iters.delete(iter);
      this.#fetches--;
      this.#free += batch - received;
    }
    if (failed === undefined) this.#failures = 0;
    else this.#pause(failed);
    this.#pump();
  }

  /** Stops pulling for a while after a failure, then opens the consumer again and resumes. */
  #pause(err: unknown): void {
    if (this.#stopping || this.#paused) return;
    this.#paused = true;
    this.#failures++;
    this.#s.limiter.warn(
      "pull",
      { err, consumer: this.name },
      "pulling events failed; retrying (is JetStream reachable?)",
    );
    const ms = Math.min(MAX_RETRY_MS, 250 * 2 ** Math.min(this.#failures, 6));
    this.#retry = setTimeout(() => {
      this.open().then(
        () => {
          this.#paused = false;
          this.#pump();
        },
        (openErr: unknown) => {
          this.#paused = false;
          this.#pause(openErr);
        },
      );
    }, ms);
    this.#retry.unref();
  }

  #deliver(m: JsMsg): void {
    if (this.#stopping) {
      // Arrived while stopping: another instance takes it at once.
      m.nak();
      this.#free++;
      return;
    }
    let outcome: Promise<void> | undefined;
    try {
      outcome = this.#handle(m);
    } catch (err) {
      outcome = Promise.reject(err);
    }
    // Most events finish synchronously (a synchronous handler, no token check): no promise.
    if (outcome === undefined) {
      this.#free++;
      this.#pump();
      return;
    }
    this.#handlers.track(
      outcome
        .catch((err: unknown) => {
          this.#s.events.log.error({ err, consumer: this.name }, "event handling failed");
          m.nak(this.#backoff(m.info.deliveryCount));
        })
        .finally(() => {
          this.#free++;
          this.#pump();
        }),
    );
  }

  /** Checks and runs one delivery; `undefined` when it is already settled. */
  #handle(m: JsMsg): Promise<void> | undefined {
    const s = this.#s;
    const info = m.info;
    const deliveries = info.deliveryCount;
    const msg = coreMessage(m);
    const header = msg === undefined ? headersOf(m) : eventHeaders(msg);
    const input = readEventInput(
      m.subject,
      header,
      m.data.length,
      s.subjects.prefix,
      s.maxBytes,
      String(info.streamSequence),
    );
    if (input instanceof MeshError) return this.#deadLetter(m, input, deliveries);
    // A replay is meant for the service whose consumer gave up; the others handled it already.
    if (input.replayFor !== undefined && input.replayFor !== s.events.service) {
      this.#acks.ack(m);
      return undefined;
    }
    if (deliveries > 1) s.events.metrics.redelivered(this.#h.pattern, this.#h.mode);
    if (deliveries > this.#h.maxDeliver) {
      // The last allowed delivery never finished (its instance died, or dead-lettering failed).
      const err = new MeshError(
        "DELIVERY_LIMIT",
        `delivered ${deliveries} times without being handled (maxDeliver ${this.#h.maxDeliver})`,
      );
      return this.#deadLetter(m, err, deliveries);
    }
    const storedAt = Math.floor(info.timestampNanos / 1_000_000);
    if (s.auth !== undefined) {
      return admitEvent(input, m.data, s.auth, storedAt, s.limits).then((admitted) => {
        if (!(admitted instanceof MeshError)) {
          return this.#run(m, input, header, admitted.payload, admitted.caller, storedAt);
        }
        // Retryable means this instance cannot check the token now (no key set), not that the
        // event is bad: it goes back to the stream, for this instance or another, later.
        if (admitted.retryable) {
          m.nak(this.#backoff(deliveries));
          return undefined;
        }
        return this.#deadLetter(m, admitted, deliveries);
      });
    }
    const payload = decodeEvent(input.codec, m.data, s.limits);
    if (payload instanceof MeshError) return this.#deadLetter(m, payload, deliveries);
    return this.#run(m, input, header, payload, undefined, storedAt);
  }

  /** Runs the handler; acknowledges at once when it returns synchronously. */
  #run(
    m: JsMsg,
    input: EventInput,
    header: HeaderReader,
    payload: unknown,
    caller: CallerClaims | undefined,
    storedAt: number,
  ): Promise<void> | undefined {
    const h = this.#h;
    const ctx = new EventDelivery(
      this.#s.events,
      {
        id: input.id,
        name: input.name,
        pattern: h.pattern,
        mode: EventMode.durable,
        seq: m.info.streamSequence,
        deliveries: m.info.deliveryCount,
        publishedAt: storedAt,
      },
      caller,
      m,
      header,
      h.timeoutMs,
    );
    let result: unknown;
    try {
      result = ctx.run(h.handler, payload);
    } catch (err) {
      return this.#failed(m, ctx, err);
    }
    if (!isThenable(result)) {
      this.#handledOk(m, ctx);
      return undefined;
    }
    const running = this.#handlers.running;
    running.set(ctx, m);
    return ctx.race(result).then(
      () => {
        running.delete(ctx);
        this.#handledOk(m, ctx);
      },
      (err: unknown) => {
        running.delete(ctx);
        return this.#failed(m, ctx, err);
      },
    );
  }

  #handledOk(m: JsMsg, ctx: EventDelivery): void {
    ctx.endSpan(undefined);
    this.#acks.ack(m);
    this.#s.events.metrics.handled(this.#h.pattern, this.#h.mode, undefined);
  }

  async #failed(m: JsMsg, ctx: EventDelivery, err: unknown): Promise<void> {
    const code = err === STOPPING ? "UNAVAILABLE" : errorType(err);
    ctx.endSpan(code, err instanceof Error ? err.message : undefined);
    if (err === STOPPING) {
      m.nak();
      return;
    }
    this.#s.events.metrics.handled(this.#h.pattern, this.#h.mode, code);
    const deliveries = ctx.event.deliveries;
    // A MeshError is the handler's deliberate verdict: unless it says retryable, retrying cannot
    // change it. Any other error, and running out of time (here or in a nested call), may pass.
    if (isMeshError(err) && !err.retryable && err.code !== "DEADLINE_EXCEEDED") {
      return this.#deadLetter(m, err, deliveries);
    }
    const failure = isMeshError(err)
      ? err
      : new MeshError("INTERNAL", err instanceof Error ? err.message : String(err));
    this.#s.limiter.warn(
      "handler",
      { err, consumer: this.name, seq: ctx.event.seq, deliveries },
      "event handler failed",
    );
    if (deliveries >= this.#h.maxDeliver) return this.#deadLetter(m, failure, deliveries);
    m.nak(this.#backoff(deliveries));
  }

  async #deadLetter(m: JsMsg, err: MeshError, deliveries: number): Promise<void> {
    try {
      await this.#s.deadLetterer.deadLetter(m, err, deliveries);
      this.#s.events.metrics.deadLettered(this.#h.pattern, this.#h.mode, err.code);
      this.#s.limiter.warn(
        `dead-letter:${err.code}`,
        { consumer: this.name, seq: m.info.streamSequence, code: err.code, deliveries },
        "event dead-lettered",
      );
    } catch (publishErr) {
      // Not terminated: it comes back after the backoff and is dead-lettered then.
      this.#s.limiter.warn(
        "dead-letter-failed",
        { err: publishErr, consumer: this.name },
        "the dead-letter stream did not store the event; it will be delivered again",
      );
      m.nak(this.#backoff(Number.MAX_SAFE_INTEGER));
    }
  }

  #backoff(deliveries: number): number {
    const b = this.#h.backoffMs;
    return b[Math.min(Math.max(deliveries, 1), b.length) - 1]!;
  }

  /** Keeps long handlers' events with progress acks and ends handlers past `timeoutMs`. */
  #sweepRunning(): void {
    const now = Date.now();
    const progressEvery = Math.floor(this.#h.ackWaitMs / 3);
    this.#handlers.sweep(
      now,
      () => timedOut(this.#h.timeoutMs),
      (ctx, m) => {
        if (now - ctx.progressAt >= progressEvery) {
          m.working();
          ctx.progressAt = now;
        }
      },
    );
  }

  /**
   * Stops pulling and lets running handlers finish up to `timeoutMs`; then aborts the rest and
   * hands their events back for immediate redelivery to another instance.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#retry);
    await this.#handlers.drain(timeoutMs, STOPPING);
    this.#acks.flush();
    for (const iter of this.#iters) iter.stop();
    clearInterval(this.#sweep);
  }
}
