import { LOG_INTERVAL_MS, LOG_KEYS_PER_INTERVAL, ThrottledLog } from "@natsmesh/protocol/internal";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

/** A ThrottledLog over a pino logger whose lines land in `lines`. */
function capture(): { log: ThrottledLog; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { log: new ThrottledLog(logger), lines };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["performance", "Date"] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("ThrottledLog", () => {
  it("logs a kind once per interval, then with how many were left out", () => {
    const { log, lines } = capture();
    for (let i = 0; i < 5; i++) log.warn("flood", { i }, "refused");
    log.warn("other", {}, "another kind");
    expect(lines.map((l) => [l.msg, l.i, l.suppressed])).toEqual([
      ["refused", 0, undefined],
      ["another kind", undefined, undefined],
    ]);
    vi.advanceTimersByTime(LOG_INTERVAL_MS - 1);
    log.warn("flood", { i: 5 }, "refused");
    expect(lines).toHaveLength(2);
    vi.advanceTimersByTime(1);
    log.warn("flood", { i: 6 }, "refused");
    expect(lines[2]).toMatchObject({ msg: "refused", i: 6, suppressed: 5 });
  });

  it("logs each key once per interval, at most LOG_KEYS_PER_INTERVAL keys of a kind", () => {
    const { log, lines } = capture();
    const keys = LOG_KEYS_PER_INTERVAL + 10;
    for (let i = 0; i < keys; i++) {
      log.warnEach("forged", `id${i}`, { id: i }, "forged");
      log.warnEach("forged", `id${i}`, { id: i }, "forged");
    }
    expect(lines.map((l) => l.id)).toEqual(
      Array.from({ length: LOG_KEYS_PER_INTERVAL }, (_, i) => i),
    );
    vi.advanceTimersByTime(LOG_INTERVAL_MS);
    log.warnEach("forged", "id0", { id: 0 }, "forged");
    // Left out since the last line: the repeat of the last key logged, and both calls of each
    // key past the limit.
    expect(lines.at(-1)).toMatchObject({
      id: 0,
      suppressed: 1 + 2 * (keys - LOG_KEYS_PER_INTERVAL),
    });
  });
});
