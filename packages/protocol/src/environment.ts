import { readFileSync } from "node:fs";
import { isIntInRange } from "./integers.js";
import { assertPrefix } from "./names.js";
import type { TokenGateOptions } from "./tokens/token-gate.js";
import type { TokenSource } from "./tokens/token-provider.js";

/**
 * Token settings from the environment every natsmesh process reads (12-factor): `MESH_JWKS`
 * (a path, inline JSON or "kv"), `MESH_ISSUER`, `MESH_AUDIENCE`, `MESH_MAX_TOKEN_LIFETIME`
 * (seconds). `undefined` when `MESH_JWKS` is unset. Options given in code always win over these.
 */
export function authFromEnv(env: NodeJS.ProcessEnv = process.env): TokenGateOptions | undefined {
  const jwks = env.MESH_JWKS;
  if (jwks === undefined || jwks === "") return undefined;
  const life = maxTokenLifetimeFromEnv(env);
  return {
    jwks,
    ...(env.MESH_ISSUER ? { issuer: env.MESH_ISSUER } : {}),
    ...(env.MESH_AUDIENCE ? { audience: env.MESH_AUDIENCE } : {}),
    ...(life === undefined ? {} : { maxTokenLifetimeSec: life }),
  };
}

/**
 * The longest token lifetime from `MESH_MAX_TOKEN_LIFETIME` (whole seconds), or `undefined`
 * when it is unset or blank. Verifiers refuse longer-lived tokens; `natsmesh token issue`
 * refuses to make them. Throws `TypeError` on a value that is not a whole number of seconds ≥ 1.
 */
export function maxTokenLifetimeFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  return wholeFromEnv(env, "MESH_MAX_TOKEN_LIFETIME", "seconds");
}

/**
 * The process's own token: `MESH_TOKEN`, else the contents of the file `MESH_TOKEN_FILE` (as
 * Docker and Kubernetes secrets are mounted), or `undefined`. The file is read again each time
 * the token is refreshed (at 80 % of its life), so whoever writes it can rotate the token
 * without a restart; surrounding whitespace (a trailing newline) is dropped. The read is
 * synchronous (a small file, rarely read), so the token is there before the first announcement.
 */
export function tokenFromEnv(env: NodeJS.ProcessEnv = process.env): TokenSource | undefined {
  const token = env.MESH_TOKEN;
  if (token !== undefined && token !== "") return token;
  const file = env.MESH_TOKEN_FILE;
  if (file === undefined || file === "") return undefined;
  return () => readFileSync(file, "utf8").trim();
}

/**
 * Inbox prefixes an agent answers, from `MESH_INBOX_PREFIXES` (comma-separated, e.g.
 * `_INBOX,_INBOX_checkout`), or `undefined` when unset. Not checked here: the agent's option
 * resolver checks them as it checks the option.
 */
export function inboxPrefixesFromEnv(env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  const value = env.MESH_INBOX_PREFIXES;
  if (value === undefined || value.trim() === "") return undefined;
  return value.split(",").map((p) => p.trim());
}

/**
 * The inbox prefix of the process's own connection, from `NATS_INBOX_PREFIX`, or `undefined`
 * when unset: set it when NATS permissions give the process's user its own inboxes
 * (`_INBOX_checkout.>`). Checked by each option resolver, against the mesh prefix.
 */
export function inboxPrefixFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return variable(env, "NATS_INBOX_PREFIX");
}

/** A variable's value, or `undefined` when it is unset or blank. */
function variable(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === "" ? undefined : value;
}

/**
 * NATS servers from `NATS_URL` (one URL or several, comma-separated), or `undefined` when it is
 * unset or blank. The `servers` option wins over it; neither gives `nats://127.0.0.1:4222`.
 */
export function serversFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return variable(env, "NATS_URL");
}

/**
 * The mesh prefix from `MESH_PREFIX`, or `undefined` when it is unset or blank. The `prefix`
 * option wins over it; neither gives `mesh`. Throws `TypeError`, naming the variable, on a value
 * that is not a prefix: a typo there must not quietly start a second mesh.
 */
export function prefixFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const prefix = variable(env, "MESH_PREFIX");
  if (prefix === undefined) return undefined;
  try {
    assertPrefix(prefix);
  } catch (err) {
    throw new TypeError(`MESH_PREFIX: ${(err as Error).message}`);
  }
  return prefix;
}

/**
 * The agents' heartbeat interval from `MESH_HEARTBEAT_MS` (whole milliseconds), or `undefined`
 * when it is unset or blank. Agents heartbeat at it; registries evict after three of them unless
 * `heartbeatTimeoutMs` is given. Options given in code win over it. Throws `TypeError`, naming
 * the variable, on a value that is not a whole number of milliseconds ≥ 1.
 */
export function heartbeatMsFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  return wholeFromEnv(env, "MESH_HEARTBEAT_MS", "milliseconds");
}

/**
 * A whole number ≥ 1 of `unit` from the variable `name`, or `undefined` when it is unset or
 * blank. Digits only: "1s", "1e3" or "1.5" throw a `TypeError` naming the variable, rather than
 * being read as something the operator did not write.
 */
function wholeFromEnv(env: NodeJS.ProcessEnv, name: string, unit: string): number | undefined {
  const raw = variable(env, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !isIntInRange(n, 1, Number.MAX_SAFE_INTEGER)) {
    throw new TypeError(`${name} must be whole ${unit} ≥ 1, got ${raw}`);
  }
  return n;
}

/** The levels `LOG_LEVEL` may name: pino's, quietest last. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Level of the logs of agents and registries when `LOG_LEVEL` is unset. */
export const DEFAULT_LOG_LEVEL: LogLevel = "info";

/**
 * The log level from `LOG_LEVEL` (any case), else {@link DEFAULT_LOG_LEVEL}. Throws `TypeError`
 * on a value that is not a level, rather than logging at a level nobody asked for.
 */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const raw = variable(env, "LOG_LEVEL");
  if (raw === undefined) return DEFAULT_LOG_LEVEL;
  const level = raw.toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new TypeError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got ${raw}`);
  }
  return level as LogLevel;
}

/**
 * The agent's Prometheus endpoint from `MESH_METRICS_PORT` (and `MESH_METRICS_HOST`, default
 * loopback), or `undefined` when the port is unset. The port is checked by the agent's option
 * resolver, as the option is.
 */
export function metricsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): { port: number; host?: string } | undefined {
  const port = variable(env, "MESH_METRICS_PORT");
  if (port === undefined) return undefined;
  const host = variable(env, "MESH_METRICS_HOST");
  return {
    port: /^\d+$/.test(port) ? Number(port) : Number.NaN,
    ...(host === undefined ? {} : { host }),
  };
}
