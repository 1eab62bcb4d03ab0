/**
 * An empty record without a prototype, for keys a peer chooses: `__proto__` is a valid service
 * name, instance id and error code, and on a plain object it would set the prototype instead.
 */
export function dict<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}
