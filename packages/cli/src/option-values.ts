import { usageError } from "./errors.js";

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
