/** True when `value` is an integer from `min` to `max`. */
export function isIntInRange(value: unknown, min: number, max: number): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= min && value <= max;
}

/**
 * Returns `value` when it is an integer from `min` to `max`; otherwise throws a `TypeError`
 * naming the option `what`. For options and arguments, checked before anything reaches NATS.
 */
export function checkInt(value: unknown, what: string, min: number, max: number): number {
  if (!isIntInRange(value, min, max)) {
    throw new TypeError(`${what} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}
