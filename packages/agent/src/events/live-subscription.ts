import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import { EventMode, MeshError, patternId, type Subjects } from "@natsmesh/protocol";
import { type DecodeLimits, errorType, type ThrottledLog } from "@natsmesh/protocol/internal";
import type { AgentAuth } from "../auth.js";
import { admitEvent } from "./event-admission.js";
import { EventDelivery, type EventScope } from "./event-context.js";
import { eventHeaders } from "./event-headers.js";
import { readEventInput } from "./event-input.js";
import type { ResolvedEventHandler } from "./event-options.js";
import { isThenable, RunningHandlers, STOPPING, timedOut } from "./running-handlers.js";

/** What every live subscription of one agent shares. */
export interface LiveScope {
  readonly events: EventScope;
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  readonly auth: AgentAuth | undefined;
  readonly maxBytes: number;
  readonly limits: DecodeLimits;
  readonly limiter: ThrottledLog;
}

/**
 * A `group` (core NATS queue group `<service>__<pattern-id>`: one instance of the service gets
 * each event) or `broadcast` (every instance gets it) subscription. At most once: nothing is
 * stored, retried or dead-lettered; events beyond `concurrency` running handlers, and events that
 * fail their checks, are dropped and logged (rate-limited).
 */
export class LiveSubscription {
  readonly #s: LiveScope;
  readonly #h: ResolvedEventHandler;
  readonly #sub: Subscription;
  readonly #handlers = new RunningHandlers<undefined>();
  #received = 0;
  #sweep: NodeJS.Timeout | undefined;

  constructor(scope: LiveScope, handler: ResolvedEventHandler) {
    this.#s = scope;
    this.#h = handler;
    const subject = scope.subjects.eventPattern(handler.pattern);
    const queue =
      handler.mode === EventMode.group
        ? `${scope.events.service}__${patternId(handler.pattern)}`
        : undefined;
    this.#sub = scope.nc.subscribe(subject, {
      ...(queue === undefined ? {} : { queue }),
      callback: (err, msg) => {
        if (err === null) this.#onMessage(msg);
      },
    });
    this.#sweep = setInterval(() => this.#sweepRunning(), 1000);
    this.#sweep.unref();
  }

  #onMessage(msg: Msg): void {
    const s = this.#s;
    if (this.#handlers.size >= this.#h.concurrency) {
      s.limiter.warn(
        "live-overloaded",
        { pattern: this.#h.pattern, concurrency: this.#h.concurrency },
        "event dropped: the subscription is running its limit of handlers",
      );
      return;
    }
    const n = ++this.#received;
    const header = eventHeaders(msg);
    const input = readEventInput(
      msg.subject,
      header,
      msg.data.length,
      s.subjects.prefix,
      s.maxBytes,
      `live-${n}`,
    );
    if (input instanceof MeshError) {
      this.#drop(msg.subject, input);
      return;
    }
    // Replays are for the durable consumer that gave up on the event.
    if (input.replayFor !== undefined) return;
    const handling = (async () => {
      const admitted = await admitEvent(input, msg.data, s.auth, Date.now(), s.limits);
      if (admitted instanceof MeshError) {
        this.#drop(msg.subject, admitted);
        return;
      }
      const ctx = new EventDelivery(
        s.events,
        {
          id: input.id,
          name: input.name,
          pattern: this.#h.pattern,
          mode: this.#h.mode,
          seq: 0,
          deliveries: 1,
          publishedAt: Date.now(),
        },
        admitted.caller,
        msg,
        header,
        this.#h.timeoutMs,
      );
      this.#handlers.running.set(ctx, undefined);
      try {
        let result: unknown;
        try {
          result = ctx.run(this.#h.handler, admitted.payload);
        } catch (err) {
          result = Promise.reject(err);
        }
        if (isThenable(result)) await ctx.race(result);
        ctx.endSpan(undefined);
        s.events.metrics.handled(this.#h.pattern, this.#h.mode, undefined);
      } catch (err) {
        const code = err === STOPPING ? "UNAVAILABLE" : errorType(err);
        ctx.endSpan(code, err instanceof Error ? err.message : undefined);
        if (err !== STOPPING) {
          s.events.metrics.handled(this.#h.pattern, this.#h.mode, code);
          s.limiter.warn(
            "live-handler",
            { err, pattern: this.#h.pattern, event: input.name },
            "event handler failed; the event is not retried (live subscription)",
          );
        }
      } finally {
        this.#handlers.running.delete(ctx);
      }
    })();
    this.#handlers.track(handling);
  }

  #drop(subject: string, err: MeshError): void {
    this.#s.limiter.warn(
      `live-refused:${err.code}`,
      { subject, code: err.code, reason: err.message, pattern: this.#h.pattern },
      "event dropped",
    );
  }

  #sweepRunning(): void {
    this.#handlers.sweep(Date.now(), () => timedOut(this.#h.timeoutMs));
  }

  /** Unsubscribes, lets running handlers finish up to `timeoutMs`, then aborts the rest. */
  async stop(timeoutMs: number): Promise<void> {
    await this.#sub.drain().catch(() => undefined);
    await this.#handlers.drain(timeoutMs, STOPPING);
    clearInterval(this.#sweep);
  }
}
