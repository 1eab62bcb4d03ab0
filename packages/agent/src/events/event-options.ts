import { EventMode, isEventMode } from "@natsmesh/protocol";
import { assertEventPattern, checkInt, withDefaults } from "@natsmesh/protocol/internal";
import type { EventContext } from "./event-context.js";

/** An event handler: gets the decoded payload; its promise settling is the event's outcome. */
// biome-ignore lint/suspicious/noExplicitAny: handlers declare their own payload type; `unknown` would refuse them.
export type EventHandler = (payload: any, ctx: EventContext) => unknown;

/** Where a durable consumer that did not exist before starts. */
export type StartFrom = "new" | "all" | Date | number;

/** An event subscription with options: `{ handler, mode: "broadcast" }`. */
export interface EventDefinition {
  handler: EventHandler;
  /**
   * `durable`: stored, at least once per service, retried, dead-lettered (a JetStream durable
   * consumer shared by the service's instances); `group`: live instances only, one per service;
   * `broadcast`: live instances only, every one.
   * @default "durable"
   */
  mode?: EventMode;
  /**
   * Most handlers of this subscription running at once in this instance. A durable consumer
   * pulls no more than that; a live subscription drops (and counts) events beyond it.
   * @default 64
   */
  concurrency?: number;
  /** Durable only: one event at a time across the whole service, in stream order. @default false */
  ordered?: boolean;
  /**
   * Durable only: where a consumer that does not exist yet starts: `"new"` events only, `"all"`
   * that the stream still holds, those stored since a `Date`, or from a stream sequence number.
   * An existing consumer keeps its place.
   * @default "new"
   */
  startFrom?: StartFrom;
  /** Durable only: deliveries before the event is dead-lettered. @default 5 */
  maxDeliver?: number;
  /**
   * Durable only: pause before each redelivery after a failure, ms; the last value repeats.
   * @default [1000, 5000, 30000]
   */
  backoffMs?: number[];
  /**
   * Durable only: how long the server waits for an acknowledgement before it redelivers to
   * another instance (after a crash); running handlers extend it with progress acks.
   * @default 30000
   */
  ackWaitMs?: number;
  /**
   * Longest a handler may run; then `ctx.signal` aborts and the delivery counts as failed
   * (`DEADLINE_EXCEEDED`, retried for durable events).
   * @default 300000
   */
  timeoutMs?: number;
}

/** A subscription as the agent runs it. */
export interface ResolvedEventHandler {
  pattern: string;
  handler: EventHandler;
  mode: EventMode;
  concurrency: number;
  ordered: boolean;
  startFrom: StartFrom;
  maxDeliver: number;
  backoffMs: readonly number[];
  ackWaitMs: number;
  timeoutMs: number;
}

export const EVENT_DEFAULTS = {
  mode: EventMode.durable,
  concurrency: 64,
  ordered: false,
  startFrom: "new",
  maxDeliver: 5,
  backoffMs: [1000, 5000, 30_000],
  ackWaitMs: 30_000,
  timeoutMs: 300_000,
} as const satisfies Omit<ResolvedEventHandler, "pattern" | "handler">;

/** Most event subscriptions one agent may have (as many as its record may list). */
export const MAX_EVENT_SUBSCRIPTIONS = 64;

function startFrom(value: unknown, what: string): StartFrom {
  if (value === "new" || value === "all") return value;
  if (value instanceof Date && !Number.isNaN(value.getTime())) return new Date(value.getTime());
  if (typeof value === "number") return checkInt(value, what, 1, Number.MAX_SAFE_INTEGER);
  throw new TypeError(`${what} must be "new", "all", a Date or a sequence number`);
}

function resolveOne(pattern: string, definition: unknown): ResolvedEventHandler {
  const at = `events["${pattern}"]`;
  assertEventPattern(pattern, `event pattern ${JSON.stringify(pattern)}`);
  const d = (typeof definition === "function" ? { handler: definition } : definition) as
    | EventDefinition
    | null
    | undefined;
  if (d === null || typeof d !== "object" || typeof d.handler !== "function") {
    throw new TypeError(`${at} must be a function or { handler, mode?, … }`);
  }
  const o = withDefaults(EVENT_DEFAULTS, d);
  if (!isEventMode(o.mode))
    throw new TypeError(`${at}.mode must be "durable", "group" or "broadcast"`);
  const durable = o.mode === EventMode.durable;
  for (const key of ["ordered", "startFrom", "maxDeliver", "backoffMs", "ackWaitMs"] as const) {
    if (!durable && d[key] !== undefined) {
      throw new TypeError(`${at}.${key} applies to durable subscriptions only`);
    }
  }
  if (typeof o.ordered !== "boolean") throw new TypeError(`${at}.ordered must be a boolean`);
  const backoff = o.backoffMs as unknown;
  if (!Array.isArray(backoff) || backoff.length === 0 || backoff.length > 32) {
    throw new TypeError(`${at}.backoffMs must be a list of 1 to 32 delays in ms`);
  }
  return {
    pattern,
    handler: d.handler,
    mode: o.mode,
    concurrency: o.ordered ? 1 : checkInt(o.concurrency, `${at}.concurrency`, 1, 4096),
    ordered: o.ordered,
    startFrom: startFrom(o.startFrom, `${at}.startFrom`),
    maxDeliver: checkInt(o.maxDeliver, `${at}.maxDeliver`, 1, 1000),
    backoffMs: Object.freeze(
      backoff.map((ms, i) => checkInt(ms, `${at}.backoffMs[${i}]`, 0, 3_600_000)),
    ),
    ackWaitMs: checkInt(o.ackWaitMs, `${at}.ackWaitMs`, 1000, 3_600_000),
    timeoutMs: checkInt(o.timeoutMs, `${at}.timeoutMs`, 1, 24 * 3_600_000),
  };
}

/** Resolves and checks the agent's `events` option; throws `TypeError` on anything invalid. */
export function resolveEvents(events: unknown): ResolvedEventHandler[] {
  if (events === undefined) return [];
  if (events === null || typeof events !== "object")
    throw new TypeError("events must be an object");
  const entries = Object.entries(events);
  if (entries.length > MAX_EVENT_SUBSCRIPTIONS) {
    throw new TypeError(`an agent may have at most ${MAX_EVENT_SUBSCRIPTIONS} event subscriptions`);
  }
  return entries.map(([pattern, definition]) => resolveOne(pattern, definition));
}
