import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { EventMode, type EventSubscription, eventStream, subjects } from "@natsmesh/protocol";
import {
  type DecodeLimits,
  type EventStreamOptions,
  ensureEventStreams,
  ThrottledLog,
} from "@natsmesh/protocol/internal";
import type { AgentAuth } from "../auth.js";
import { DeadLetterer } from "./dead-letterer.js";
import { DurableConsumer } from "./durable-consumer.js";
import type { EventScope } from "./event-context.js";
import type { ResolvedEventHandler } from "./event-options.js";
import { LiveSubscription } from "./live-subscription.js";

/** What an agent's event subscriptions are started with. */
export interface EventHostOptions {
  connection: NatsConnection;
  prefix: string;
  scope: EventScope;
  handlers: readonly ResolvedEventHandler[];
  auth: AgentAuth | undefined;
  streams: Required<EventStreamOptions>;
  maxBytes: number;
  /** What decoding an event's payload may build (the agent's `maxElements`, `maxDepth`). */
  limits: DecodeLimits;
}

/**
 * Runs one agent's event subscriptions: durable consumers (creating the streams and consumers
 * first) and live subscriptions. Starting fails with `UNAVAILABLE` when durable subscriptions
 * need JetStream and it cannot be reached.
 */
export class EventHost {
  readonly #durable: DurableConsumer[];
  readonly #live: LiveSubscription[];
  readonly subscriptions: EventSubscription[];

  private constructor(
    durable: DurableConsumer[],
    live: LiveSubscription[],
    subs: EventSubscription[],
  ) {
    this.#durable = durable;
    this.#live = live;
    this.subscriptions = subs;
  }

  static async start(o: EventHostOptions): Promise<EventHost> {
    const s = subjects(o.prefix);
    const log = o.scope.log;
    const limiter = new ThrottledLog(log);
    const durable: DurableConsumer[] = [];
    const wanted = o.handlers.filter((h) => h.mode === EventMode.durable);
    if (wanted.length > 0) {
      const jsm = await jetstreamManager(o.connection);
      for (const stream of await ensureEventStreams(jsm, o.prefix, o.streams)) {
        if (stream.created) log.info({ stream: stream.name }, "created the stream");
        if (stream.differences.length > 0) {
          log.warn(
            { stream: stream.name, differences: stream.differences },
            "the stream exists with other settings; using it as it is",
          );
        }
      }
      const js = jetstream(o.connection);
      const scope = {
        events: o.scope,
        js,
        jsm,
        stream: eventStream(o.prefix),
        subjects: s,
        auth: o.auth,
        deadLetterer: new DeadLetterer(o.connection, js, s, o.scope.service),
        maxBytes: o.maxBytes,
        limits: o.limits,
        limiter,
      };
      for (const h of wanted) durable.push(new DurableConsumer(scope, h));
      await Promise.all(durable.map((c) => c.open()));
    }
    const liveScope = {
      events: o.scope,
      nc: o.connection,
      subjects: s,
      auth: o.auth,
      maxBytes: o.maxBytes,
      limits: o.limits,
      limiter,
    };
    const live = o.handlers
      .filter((h) => h.mode !== EventMode.durable)
      .map((h) => new LiveSubscription(liveScope, h));
    for (const c of durable) c.start();
    const subs = o.handlers.map((h) => ({ pattern: h.pattern, mode: h.mode }));
    return new EventHost(durable, live, subs);
  }

  /** Durable consumers pull again (after the agent's key set arrived). */
  resume(): void {
    for (const c of this.#durable) c.resume();
  }

  /** Stops every subscription, letting running handlers finish up to `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    await Promise.allSettled([
      ...this.#durable.map((c) => c.stop(timeoutMs)),
      ...this.#live.map((l) => l.stop(timeoutMs)),
    ]);
  }
}
