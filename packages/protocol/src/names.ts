/** Longest service name, method name, instance id or prefix token the mesh accepts. */
export const MAX_NAME_LENGTH = 64;

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** True when `value` is a single subject token the mesh accepts as a name: `[A-Za-z0-9_-]{1,64}`. */
export function isValidName(value: unknown): value is string {
  return typeof value === "string" && NAME.test(value);
}

/**
 * Throws a `TypeError` unless `value` is a valid name; `what` names the argument in the message.
 * Used on caller input, before anything reaches NATS.
 */
export function assertName(value: unknown, what: string): asserts value is string {
  if (!isValidName(value)) {
    throw new TypeError(
      `${what} must be 1-${MAX_NAME_LENGTH} characters of [A-Za-z0-9_-], got ${describe(value)}`,
    );
  }
}

/**
 * Throws a `TypeError` unless `prefix` is a valid subject prefix: one or more valid names
 * joined by dots (`mesh`, `acme.prod`).
 */
export function assertPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== "string" || prefix.length > 128 || !prefix.split(".").every(isValidName)) {
    throw new TypeError(
      `prefix must be dot-separated tokens of [A-Za-z0-9_-] (e.g. "mesh"), got ${describe(prefix)}`,
    );
  }
}

function describe(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  }
  return typeof value;
}
