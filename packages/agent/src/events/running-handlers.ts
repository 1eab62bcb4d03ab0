import { MeshError } from "@natsmesh/protocol";
import { settledWithin } from "@natsmesh/protocol/internal";
import type { EventDelivery } from "./event-context.js";

/** Why the agent itself gave up on a handler: it is stopping. Never dead-letters. */
export const STOPPING = new MeshError(
  "UNAVAILABLE",
  "the agent stopped before the handler finished",
);

/** The error a handler past its `timeoutMs` is aborted with. */
export function timedOut(timeoutMs: number): MeshError {
  return new MeshError("DEADLINE_EXCEEDED", `the handler ran longer than ${timeoutMs} ms`);
}

/**
 * The handlers one subscription is running, and the event work around them (checks, acks, dead
 * letters) that a stop must wait for. One place for the two rules every subscription shares:
 * a handler past its deadline is aborted, and a stop waits a bounded time, then aborts the rest.
 */
export class RunningHandlers<T> {
  /** Handlers running now, with what the subscription keeps for each (its message). */
  readonly running = new Map<EventDelivery, T>();
  readonly #work = new Set<Promise<void>>();

  /** Event work in progress (running handlers included). */
  get size(): number {
    return this.#work.size;
  }

  /** Counts `work` until it settles. */
  track(work: Promise<void>): void {
    this.#work.add(work);
    void work.finally(() => this.#work.delete(work));
  }

  /** Aborts handlers past their deadline with `timedOut(ctx)`; calls `each` for the others. */
  sweep(now: number, timedOut: () => unknown, each?: (ctx: EventDelivery, value: T) => void): void {
    for (const [ctx, value] of this.running) {
      if (now >= ctx.deadline) ctx.abort(timedOut());
      else each?.(ctx, value);
    }
  }

  /** Waits for the work up to `timeoutMs`, then aborts running handlers with `reason` and waits for the rest. */
  async drain(timeoutMs: number, reason: unknown): Promise<void> {
    if (this.#work.size > 0) await settledWithin(Promise.allSettled([...this.#work]), timeoutMs);
    for (const ctx of this.running.keys()) ctx.abort(reason);
    // Aborted handlers settle at once; what remains is a check or an acknowledgement in flight.
    await Promise.allSettled([...this.#work]);
  }
}

/** True for a promise or any object with a `then` method: a handler that has not finished. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value instanceof Promise ||
    (value !== null &&
      (typeof value === "object" || typeof value === "function") &&
      typeof (value as PromiseLike<unknown>).then === "function")
  );
}
