import type { Logger } from "pino";

/** Least pause between two logs of one kind, or of one key of a kind. */
export const LOG_INTERVAL_MS = 10_000;

/**
 * Most lines per kind and interval from {@link ThrottledLog.warnEach}: a peer inventing a new
 * instance id per message gets this many lines, not one per id.
 */
export const LOG_KEYS_PER_INTERVAL = 20;

/** Lines left out of a kind since its last line. */
interface Burst {
  at: number;
  lines: number;
  suppressed: number;
}

/**
 * Logs a kind of event (a flood of refused messages, say) at most once per
 * {@link LOG_INTERVAL_MS}, with how many went unlogged since, so a flood is seen in the log
 * without the log becoming the flood. Kinds are a fixed set of strings; the keys of
 * {@link warnEach} are remembered only for one interval, at most
 * {@link LOG_KEYS_PER_INTERVAL} per kind, so this stays small whatever peers send.
 */
export class ThrottledLog {
  readonly #log: Logger;
  readonly #kinds = new Map<string, { at: number; suppressed: number }>();
  /** When each recently logged `kind\0key` was logged, oldest first. */
  readonly #keys = new Map<string, number>();
  readonly #bursts = new Map<string, Burst>();

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

  /**
   * Logs at `warn` once per `key` (an instance, say) and interval, and at most
   * {@link LOG_KEYS_PER_INTERVAL} keys of `kind` per interval; a line carries how many of the
   * kind were left out since the previous one (`suppressed`).
   */
  warnEach(kind: string, key: string, fields: Record<string, unknown>, message: string): void {
    const now = performance.now();
    // Entries are kept in the order they were logged: the stale ones are at the front.
    for (const [k, at] of this.#keys) {
      if (now - at < LOG_INTERVAL_MS) break;
      this.#keys.delete(k);
    }
    let burst = this.#bursts.get(kind);
    if (burst === undefined) {
      burst = { at: now, lines: 0, suppressed: 0 };
      this.#bursts.set(kind, burst);
    } else if (now - burst.at >= LOG_INTERVAL_MS) {
      burst.at = now;
      burst.lines = 0;
    }
    const id = `${kind}\u0000${key}`;
    if (this.#keys.has(id) || burst.lines >= LOG_KEYS_PER_INTERVAL) {
      burst.suppressed++;
      return;
    }
    this.#keys.set(id, now);
    burst.lines++;
    const suppressed = burst.suppressed;
    burst.suppressed = 0;
    this.#log.warn({ ...fields, ...(suppressed > 0 ? { suppressed } : {}) }, message);
  }
}
