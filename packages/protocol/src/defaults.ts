/**
 * `defaults` overlaid with the options the caller actually set: an option given as `undefined`
 * takes its default, as if it had been left out (`{ prefix: undefined }` means "the default
 * prefix", not "no prefix"). Returns a new object; neither argument is changed.
 */
export function withDefaults<D extends object, O extends object>(
  defaults: D,
  options: O,
): Omit<O, keyof D> & {
  [K in keyof D]: K extends keyof O ? Exclude<O[K], undefined> | D[K] : D[K];
} {
  const out: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  for (const key of Object.keys(options)) {
    const value = (options as Record<string, unknown>)[key];
    if (value !== undefined) out[key] = value;
  }
  return out as never;
}
