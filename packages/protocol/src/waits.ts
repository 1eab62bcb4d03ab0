import { setTimeout as sleep } from "node:timers/promises";

/**
 * Resolves `true` after `ms`, or `false` as soon as `signal` aborts. Never rejects, and the
 * timer never holds the process open, so nothing stopping is kept waiting on it.
 */
export function delay(ms: number, signal?: AbortSignal): Promise<boolean> {
  return sleep(ms, true, { signal, ref: false }).catch(() => false);
}

/**
 * Resolves `true` once `promise` settles, or `false` after `ms`, whichever is first; never
 * rejects. The timer is cleared either way. For "wait until idle, at most so long".
 */
export async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const cancel = new AbortController();
  const settled = promise.then(
    () => true,
    () => true,
  );
  try {
    return await Promise.race([settled, sleep(ms, false, { signal: cancel.signal })]);
  } finally {
    cancel.abort();
  }
}

/** Settles like `promise`, or rejects once `ms` have passed: every wait of a process is bounded. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const cancel = new AbortController();
  const timeout = sleep(ms, undefined, { signal: cancel.signal, ref: false }).then(() => {
    throw new Error(`${what} timed out after ${ms} ms`);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    cancel.abort();
  }
}
