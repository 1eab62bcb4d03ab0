import type { MeshError } from "@natsmesh/protocol";
import type { RandomSource } from "./strategies/random.js";

/** Where a call stands when an attempt failed. */
export interface RetryState {
  /** The attempt went to one chosen instance, not to the queue subject. */
  direct: boolean;
  /** The call may run more than once. */
  idempotent: boolean;
  /** Retries made so far; moving on after "no responders" is not one. */
  retried: number;
  /** Retries allowed. */
  retries: number;
  /** Time left before the call's deadline, ms. */
  remainingMs: number;
}

/**
 * What to do after a failed attempt:
 * - `fail`: the error is the call's result;
 * - `next-instance`: at once, on another instance (the chosen one had no responders: the call
 *   never ran, so this does not count as a retry);
 * - `retry`: after `pauseMs`, counting against `retries`.
 */
export type RetryDecision =
  | { action: "fail" }
  | { action: "next-instance" }
  | { action: "retry"; pauseMs: number };

/** Pause before retrying a call that never ran: 5–25 ms, growing with the retry, at most 200. */
export function backoffMs(retry: number, random: RandomSource): number {
  return Math.min(200, 5 * retry + random() * 20 * retry);
}

/**
 * The retry rules: "no responders" from a chosen instance moves to another one; `OVERLOADED`
 * and `UNAVAILABLE` are retried (unless the handler had started, `data.started`, and the call
 * is not idempotent); `DEADLINE_EXCEEDED` only when the call is idempotent, at once; nothing
 * beyond `retries`, nor when the pause would outlast the deadline.
 */
export function retryDecision(
  err: MeshError,
  state: RetryState,
  random: RandomSource,
): RetryDecision {
  if (state.remainingMs <= 0) return { action: "fail" };
  const data = err.data as { noResponders?: boolean; started?: boolean } | undefined;
  if (state.direct && data?.noResponders === true) return { action: "next-instance" };
  // An UNAVAILABLE from a handler that had started (a forced drain) may have done its work.
  const started = data?.started === true;
  const timedOut = err.code === "DEADLINE_EXCEEDED";
  const retryable =
    (err.retryable && (!started || state.idempotent)) || (state.idempotent && timedOut);
  if (!retryable || state.retried >= state.retries) return { action: "fail" };
  if (timedOut) return { action: "retry", pauseMs: 0 };
  const pauseMs = backoffMs(state.retried + 1, random);
  return pauseMs >= state.remainingMs ? { action: "fail" } : { action: "retry", pauseMs };
}
