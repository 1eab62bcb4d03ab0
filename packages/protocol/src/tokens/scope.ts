/** Splits a `scope` claim (space-separated patterns) into its patterns. */
export function parseScope(scope: unknown): string[] {
  if (typeof scope !== "string") return [];
  return scope.split(/\s+/).filter((s) => s.length > 0);
}

/**
 * True when some pattern allows calling `<service>.<method>`: `*` (anything), `svc.*`,
 * `*.method`, `*.*` or `svc.method`. `announce:` patterns never allow a call.
 */
export function scopeAllows(
  scope: string | readonly string[],
  service: string,
  method: string,
): boolean {
  const patterns = typeof scope === "string" ? parseScope(scope) : scope;
  for (const p of patterns) {
    if (p === "*") return true;
    const dot = p.indexOf(".");
    if (dot <= 0 || p.indexOf(".", dot + 1) !== -1 || p.includes(":")) continue;
    const s = p.slice(0, dot);
    const m = p.slice(dot + 1);
    if ((s === "*" || s === service) && (m === "*" || m === method)) return true;
  }
  return false;
}

/** True when some pattern is `announce:<service>` (or `announce:*`): the right to announce presence. */
export function scopeAllowsAnnounce(scope: string | readonly string[], service: string): boolean {
  const patterns = typeof scope === "string" ? parseScope(scope) : scope;
  return patterns.includes(`announce:${service}`) || patterns.includes("announce:*");
}
