import { usageError } from "./errors.js";

const SECONDS = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: 31_557_600 } as const;

// jose's time spans ("30m", "1 hour", "2d", "1.5h"), without the sign and "ago"/"from now" that
// make no sense for a lifetime.
const SPAN =
  /^(\d+|\d+\.\d+) ?(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w|years?|yrs?|y)$/i;

/**
 * Seconds of a lifetime flag such as `--ttl`: a whole number of seconds (`90`) or a jose time
 * span (`30m`, `1h`, `2d`), rounded to the second as jose rounds it. Anything else, or less
 * than a second, is a usage error naming the flag.
 */
export function parseTimeSpan(text: string, flag: string): number {
  const trimmed = text.trim();
  let seconds: number | undefined;
  if (/^\d+$/.test(trimmed)) seconds = Number(trimmed);
  const span = SPAN.exec(trimmed);
  if (span !== null) {
    const unit = span[2]!.charAt(0).toLowerCase() as keyof typeof SECONDS;
    seconds = Math.round(Number(span[1]) * SECONDS[unit]);
  }
  if (seconds === undefined || !Number.isSafeInteger(seconds) || seconds < 1) {
    throw usageError(
      `--${flag} must be seconds (90) or a time span such as 30m, 1h or 2d, got ${JSON.stringify(text)}`,
    );
  }
  return seconds;
}
