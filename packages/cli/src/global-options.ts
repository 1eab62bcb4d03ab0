import { DEFAULT_PREFIX, isValidName } from "@natsmesh/protocol";
import { DEFAULT_SERVER, parseServers } from "@natsmesh/protocol/internal";
import type { OptionSpec } from "./command.js";
import { usageError } from "./errors.js";

/** Flags every command accepts. */
export const GLOBAL_OPTIONS = {
  server: {
    type: "string",
    value: "URL",
    description: `NATS server(s), comma-separated (env NATS_URL; default ${DEFAULT_SERVER})`,
  },
  prefix: {
    type: "string",
    value: "P",
    description: `Subject prefix of the mesh (env MESH_PREFIX; default ${DEFAULT_PREFIX})`,
  },
  token: {
    type: "string",
    value: "JWT",
    description: "This process's own token, for commands that call or announce (env MESH_TOKEN)",
  },
  json: { type: "boolean", description: "Print JSON instead of text" },
  help: { type: "boolean", short: "h", description: "Show help" },
  version: { type: "boolean", description: "Print the version" },
} as const satisfies Record<string, OptionSpec>;

/** Log levels `LOG_LEVEL` may name (pino's). */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The process configuration every command sees: flags first, then the environment (12-factor). */
export interface GlobalOptions {
  /** From `--server`, else `NATS_URL`, else {@link DEFAULT_SERVER}. */
  readonly servers: readonly string[];
  /** From `--prefix`, else `MESH_PREFIX`, else `mesh`. */
  readonly prefix: string;
  readonly json: boolean;
  /** `LOG_LEVEL`, default `info`. */
  readonly logLevel: LogLevel;
  /** From `--token`, else `MESH_TOKEN`: this process's own token, for commands that call or announce. */
  readonly token: string | undefined;
  /** `MESH_HEARTBEAT_MS`, when set. */
  readonly heartbeatMs: number | undefined;
}

/** The process environment, as commands see it. */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * The trimmed value of variable `name`. An empty variable counts as unset, as shells and
 * compose files often export empty values.
 */
export function fromEnv(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

function checkPrefix(prefix: string, source: string): string {
  if (prefix.length > 128 || !prefix.split(".").every(isValidName)) {
    throw usageError(
      `${source} must be dot-separated tokens of [A-Za-z0-9_-] (e.g. "mesh"), got ${JSON.stringify(prefix)}`,
    );
  }
  return prefix;
}

function positiveInt(text: string, source: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw usageError(`${source} must be a positive integer, got ${JSON.stringify(text)}`);
  }
  return n;
}

/**
 * Resolves the global flags against the environment into a new object. A bad value, from a
 * flag or a variable, is a usage error (exit 2) naming where it came from.
 */
export function resolveGlobalOptions(
  values: Readonly<Record<string, string | boolean | undefined>>,
  env: Env,
): GlobalOptions {
  const server = typeof values.server === "string" ? values.server : fromEnv(env, "NATS_URL");
  const flagPrefix = typeof values.prefix === "string" ? values.prefix : undefined;
  const envPrefix = fromEnv(env, "MESH_PREFIX");
  const prefix =
    flagPrefix !== undefined
      ? checkPrefix(flagPrefix, "--prefix")
      : envPrefix !== undefined
        ? checkPrefix(envPrefix, "MESH_PREFIX")
        : DEFAULT_PREFIX;
  const level = (fromEnv(env, "LOG_LEVEL") ?? "info").toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw usageError(
      `LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level)}`,
    );
  }
  const heartbeat = fromEnv(env, "MESH_HEARTBEAT_MS");
  return {
    servers: parseServers(server),
    prefix,
    json: values.json === true,
    logLevel: level as LogLevel,
    token: typeof values.token === "string" ? values.token : fromEnv(env, "MESH_TOKEN"),
    heartbeatMs: heartbeat === undefined ? undefined : positiveInt(heartbeat, "MESH_HEARTBEAT_MS"),
  };
}
