import type { Logger } from "pino";

/** Least time between two lines of one kind. */
const DEFAULT_INTERVAL_MS = 10_000;

/**
 * Logs events a peer can cause at will (hostile reply subjects, runaway handlers) without
 * letting that peer flood the log: one line per kind at most every `intervalMs`, carrying how
 * many were left out since the last one. No timer: the clock is read when an event comes.
 */
export class RateLimitedLog {
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(log: Logger, intervalMs = DEFAULT_INTERVAL_MS) {
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  /** Logs at `warn` unless a line of `kind` was logged within the interval. */
  warn(kind: string, fields: Record<string, unknown>, text: string): void {
    const now = Date.now();
    const last = this.#last.get(kind);
    if (last !== undefined && now - last.at < this.#intervalMs) {
      last.suppressed++;
      return;
    }
    this.#log.warn({ ...fields, suppressed: last?.suppressed ?? 0 }, text);
    this.#last.set(kind, { at: now, suppressed: 0 });
  }
}
