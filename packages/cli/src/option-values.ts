import { usageError } from "./errors.js";
import { type Env, fromEnv } from "./global-options.js";

type Values = Readonly<Record<string, string | boolean | undefined>>;

/**
 * The integer value of flag `--name`, or `undefined` when it is absent. Anything but a whole
 * number from `min` to `max` is a usage error (exit 2) naming the flag.
 */
export function intOption(
  values: Values,
  name: string,
  min: number,
  max: number,
): number | undefined {
  const raw = values[name];
  if (raw === undefined || typeof raw === "boolean") return undefined;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isSafeInteger(n) || n < min || n > max) {
    throw usageError(
      `--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

/** The string value of flag `--name`, or `undefined` when it is absent. */
export function stringOption(values: Values, name: string): string | undefined {
  const raw = values[name];
  return typeof raw === "string" ? raw : undefined;
}

/**
 * The value of flag `--name`, else of the environment variable `variable` (flags win), trimmed;
 * `undefined` when neither is set. A blank flag is a usage error: it is a mistake more often
 * than a way to unset the variable.
 */
export function flagOrEnv(
  values: Values,
  env: Env,
  name: string,
  variable: string,
): string | undefined {
  const raw = stringOption(values, name);
  if (raw === undefined) return fromEnv(env, variable);
  if (raw.trim() === "") throw usageError(`--${name} must not be empty`);
  return raw.trim();
}
