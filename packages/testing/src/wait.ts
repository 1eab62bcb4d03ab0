import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/** Options of {@link waitUntil}. */
export interface WaitUntilOptions {
  /** Give up after this long. */
  timeoutMs: number;
  /** Pause between two checks. @default 50 */
  intervalMs?: number;
}

/**
 * Polls `check` until it returns true or the time is up. Resolves to whether the condition
 * held, so the caller can throw an error that says what it was waiting for.
 */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  { timeoutMs, intervalMs = 50 }: WaitUntilOptions,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await sleep(Math.min(intervalMs, left));
  }
}

/** Options of {@link until}. */
export interface UntilOptions {
  /** Give up after this long. @default 10000 */
  timeoutMs?: number;
  /** Pause between two checks. @default 50 */
  intervalMs?: number;
}

/**
 * Waits until `check` returns true, as {@link waitUntil} does, and fails with what it waited
 * for when the time is up: the way a test waits for something that must happen.
 *
 * @param what - what the test waits for ("the agent's up"); a function is called on failure,
 * so the message can show the state the test saw last.
 */
export async function until(
  what: string | (() => string),
  check: () => boolean | Promise<boolean>,
  { timeoutMs = 10_000, intervalMs = 50 }: UntilOptions = {},
): Promise<void> {
  if (await waitUntil(check, { timeoutMs, intervalMs })) return;
  const described = typeof what === "string" ? what : what();
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${described}`);
}

/** Whether a TCP connection to `host:port` opens within `timeoutMs`. */
export function canConnect(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}
