import {
  isValidEventName,
  isValidEventPattern,
  isValidName,
  KeyAlgorithm,
  PresenceLimits,
  parseScope,
} from "@natsmesh/protocol";
import { assertPrefix, isIntInRange, type JwksSource } from "@natsmesh/protocol/internal";
import { Balance } from "@natsmesh/sdk";
import { checkPresenceKeysText } from "@natsmesh/sdk/internal";
import { InvalidArgumentError } from "commander";

/**
 * Parsers of option and argument values, for commander. Each returns the value as the
 * command uses it or throws `InvalidArgumentError` with a sentence saying what is expected;
 * commander puts the option (or the variable it came from) in front of it and exits 2.
 */

/** Log levels `--log-level` and `LOG_LEVEL` may name (pino's). */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * For an option that falls back on a variable: a blank value counts as unset (`undefined`), as
 * shells and compose files often export empty variables.
 */
export function optional(text: string): string | undefined {
  const trimmed = text.trim();
  return trimmed === "" ? undefined : trimmed;
}

/**
 * For a secret (a password, a token) that falls back on a variable: blank is unset, anything
 * else is kept exactly as given, spaces included.
 */
export function secret(text: string): string | undefined {
  return text.trim() === "" ? undefined : text;
}

/**
 * `options` with blank values as `undefined`. Commander stores `""` when a parser returns
 * `undefined`, as {@link optional} and its kin do for a blank variable.
 */
export function blankAsUnset<T extends object>(options: T): T {
  return Object.fromEntries(
    Object.entries(options).map(([k, v]) => [k, v === "" ? undefined : v]),
  ) as T;
}

/** A value that may not be blank. */
export function nonEmpty(text: string): string {
  const trimmed = text.trim();
  if (trimmed === "") throw new InvalidArgumentError("It must not be empty.");
  return trimmed;
}

/** A whole number from `min` to `max`. */
export function integer(min: number, max: number): (text: string) => number {
  return (text) => {
    const n = text.trim() === "" ? Number.NaN : Number(text);
    if (!isIntInRange(n, min, max)) {
      throw new InvalidArgumentError(`It must be an integer from ${min} to ${max}.`);
    }
    return n;
  };
}

/** A blank value is unset; anything else a whole number from `min` to `max`. */
export function optionalInteger(min: number, max: number): (text: string) => number | undefined {
  const parse = integer(min, max);
  return (text) => (optional(text) === undefined ? undefined : parse(text));
}

/** A mesh prefix (`mesh`, `acme.prod`); blank is unset. */
export function prefix(text: string): string | undefined {
  const value = optional(text);
  if (value === undefined) return undefined;
  try {
    assertPrefix(value);
  } catch {
    throw new InvalidArgumentError(
      'It must be dot-separated tokens of [A-Za-z0-9_-], such as "mesh" or "acme.prod".',
    );
  }
  return value;
}

/** A name the mesh accepts: a service, method or zone. */
export function name(text: string): string {
  if (!isValidName(text)) {
    throw new InvalidArgumentError("It must be 1-64 characters of [A-Za-z0-9_-].");
  }
  return text;
}

/** A name, or unset when blank (for an option that falls back on a variable). */
export function optionalName(text: string): string | undefined {
  const value = optional(text);
  return value === undefined ? undefined : name(value);
}

/** A version to announce (`1.4.2`, `2.0.0-rc.1`): printable characters, no spaces; blank is unset. */
export function version(text: string): string | undefined {
  const value = optional(text);
  if (value === undefined) return undefined;
  if (value.length > PresenceLimits.maxVersion || !/^[\x21-\x7e]+$/.test(value)) {
    throw new InvalidArgumentError(
      `It must be 1-${PresenceLimits.maxVersion} printable characters without spaces, such as "1.4.2".`,
    );
  }
  return value;
}

/** A pino log level, any case; blank is unset. */
export function logLevel(text: string): LogLevel | undefined {
  const value = optional(text)?.toLowerCase();
  if (value === undefined) return undefined;
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`It must be one of ${LOG_LEVELS.join(", ")}.`);
  }
  return value as LogLevel;
}

/** A signing algorithm, any case. */
export function keyAlgorithm(text: string): KeyAlgorithm {
  const alg = Object.values(KeyAlgorithm).find((a) => a.toLowerCase() === text.toLowerCase());
  if (alg === undefined) {
    throw new InvalidArgumentError(`It must be one of ${Object.values(KeyAlgorithm).join(", ")}.`);
  }
  return alg;
}

const part = (s: string) => s === "*" || isValidName(s);

/**
 * A pattern a scope check can match: `*`, `svc.method` with `*` for either, `announce:svc`,
 * `stats:svc` (or `stats:*`), `emit:<event pattern>` (`emit:order.*`, `emit:>`).
 */
function validPattern(p: string): boolean {
  if (p === "*") return true;
  if (p.startsWith("announce:")) return part(p.slice("announce:".length));
  if (p.startsWith("stats:")) return part(p.slice("stats:".length));
  if (p.startsWith("emit:")) return isValidEventPattern(p.slice("emit:".length));
  const [service, method, ...rest] = p.split(".");
  return rest.length === 0 && method !== undefined && part(service!) && part(method);
}

/** A space-separated list of scope patterns, each of which can match something. */
export function scope(text: string): string[] {
  const patterns = parseScope(nonEmpty(text));
  const bad = patterns.find((p) => !validPattern(p));
  if (bad !== undefined) {
    throw new InvalidArgumentError(
      `The pattern ${JSON.stringify(bad)} would never match: use service.method, service.*, ` +
        "*.method, *, announce:service, stats:service or emit:<event pattern>.",
    );
  }
  return patterns;
}

const SECONDS = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: 31_557_600 } as const;

// jose's time spans ("30m", "1 hour", "2d", "1.5h"), without the sign and "ago"/"from now" that
// make no sense for a lifetime.
const SPAN =
  /^(\d+|\d+\.\d+) ?(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w|years?|yrs?|y)$/i;

/**
 * Seconds of a lifetime: a whole number of seconds (`90`) or a jose time span (`30m`, `1h`,
 * `2d`), rounded to the second as jose rounds it; at least one second.
 */
export function timeSpan(text: string): number {
  const trimmed = text.trim();
  let seconds: number | undefined;
  if (/^\d+$/.test(trimmed)) seconds = Number(trimmed);
  const span = SPAN.exec(trimmed);
  if (span !== null) {
    const unit = span[2]!.charAt(0).toLowerCase() as keyof typeof SECONDS;
    seconds = Math.round(Number(span[1]) * SECONDS[unit]);
  }
  if (!isIntInRange(seconds, 1, Number.MAX_SAFE_INTEGER)) {
    throw new InvalidArgumentError("It must be seconds (90) or a time span such as 30m, 1h or 2d.");
  }
  return seconds;
}

/** An event name: dot-separated tokens of [A-Za-z0-9_-], no wildcards (`order.created`). */
export function eventName(text: string): string {
  if (!isValidEventName(text)) {
    throw new InvalidArgumentError(
      'It must be 1-8 dot-separated tokens of [A-Za-z0-9_-], at most 128 characters, such as "order.created".',
    );
  }
  return text;
}

/** A stream sequence number. */
export const sequence = integer(1, Number.MAX_SAFE_INTEGER);

/** What `natsmesh call` calls: `<service>.<method>`. */
export function callTarget(text: string): { service: string; method: string } {
  const [service, method, ...rest] = text.split(".");
  if (
    rest.length > 0 ||
    service === undefined ||
    method === undefined ||
    !isValidName(service) ||
    !isValidName(method)
  ) {
    throw new InvalidArgumentError(
      "It must be <service>.<method>, two names of [A-Za-z0-9_-], such as greeter.hello.",
    );
  }
  return { service, method };
}

/** A balancing strategy of the SDK. */
export function balance(text: string): Balance {
  const all: readonly string[] = Object.values(Balance);
  if (!all.includes(text)) throw new InvalidArgumentError(`It must be one of ${all.join(", ")}.`);
  return text as Balance;
}

/**
 * The registries' public presence keys: a JWKS file, inline JSON or "kv", checked as the SDK
 * checks `MESH_PRESENCE_KEYS`.
 */
export function presenceKeys(text: string): JwksSource {
  try {
    return checkPresenceKeysText(text, "The key set");
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}
