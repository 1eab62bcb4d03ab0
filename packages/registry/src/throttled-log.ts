import type { Logger } from "pino";

/** Least pause between two logs of one kind. */
export const LOG_INTERVAL_MS = 10_000;

/**
 * Logs a kind of event (a flood of refused messages, say) at most once per
 * {@link LOG_INTERVAL_MS}, with how many went unlogged since, so a flood is seen in the log
 * without the log becoming the flood. Kinds are a fixed set of strings, so this stays small.
 */
export class ThrottledLog {
  readonly #log: Logger;
  readonly #kinds = new Map<string, { at: number; suppressed: number }>();

  constructor(log: Logger) {
    this.#log = log;
  }

  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    const now = performance.now();
    const seen = this.#kinds.get(kind);
    if (seen !== undefined && now - seen.at < LOG_INTERVAL_MS) {
      seen.suppressed++;
      return;
    }
    const suppressed = seen?.suppressed ?? 0;
    this.#kinds.set(kind, { at: now, suppressed: 0 });
    this.#log.warn({ ...fields, ...(suppressed > 0 ? { suppressed } : {}) }, message);
  }
}
