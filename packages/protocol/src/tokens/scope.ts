import { decodeJwt } from "jose";
import { eventMatches, isValidEventPattern } from "../events/names.js";

/** Splits a `scope` claim (space-separated patterns) into its patterns. */
export function parseScope(scope: unknown): string[] {
  if (typeof scope !== "string") return [];
  return scope.split(/\s+/).filter((s) => s.length > 0);
}

/**
 * True when some pattern allows calling `<service>.<method>`: `*` (anything), `svc.*`,
 * `*.method`, `*.*` or `svc.method`. `announce:` and `stats:` patterns never allow a call.
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

/**
 * True when some pattern is `emit:<event pattern>` matching the event `name` by NATS subject
 * rules (`emit:order.created`, `emit:order.*`, `emit:>`): the right to emit that event. Neither
 * `*` nor a call pattern ever allows emitting.
 */
export function scopeAllowsEmit(scope: string | readonly string[], name: string): boolean {
  const patterns = typeof scope === "string" ? parseScope(scope) : scope;
  for (const p of patterns) {
    if (!p.startsWith("emit:")) continue;
    const pattern = p.slice(5);
    if (isValidEventPattern(pattern) && eventMatches(pattern, name)) return true;
  }
  return false;
}

/**
 * The scope patterns of a token read WITHOUT verifying it: what a client knows of its own token,
 * to refuse early what the receiver would refuse. `undefined` when it is not a readable JWT.
 * Never a basis for allowing anything.
 */
export function unverifiedScope(token: string): string[] | undefined {
  try {
    return parseScope(decodeJwt(token).scope);
  } catch {
    return undefined;
  }
}

/**
 * True when some pattern is `stats:<service>` (or `stats:*`): the right to read the service's
 * `$SRV.STATS` (call counts, errors, latency, last error message) when auth is on.
 */
export function scopeAllowsStats(scope: string | readonly string[], service: string): boolean {
  const patterns = typeof scope === "string" ? parseScope(scope) : scope;
  return patterns.includes(`stats:${service}`) || patterns.includes("stats:*");
}
