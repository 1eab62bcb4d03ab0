import type { TokenGateOptions } from "./tokens/token-gate.js";

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
 * when unset. Verifiers refuse longer-lived tokens; `natsmesh token issue` refuses to make
 * them. Throws `TypeError` on a value that is not a whole number of seconds ≥ 1.
 */
export function maxTokenLifetimeFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.MESH_MAX_TOKEN_LIFETIME;
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < 1) {
    throw new TypeError(`MESH_MAX_TOKEN_LIFETIME must be whole seconds ≥ 1, got ${raw}`);
  }
  return n;
}

/** The process's own token from `MESH_TOKEN`, or `undefined`. */
export function tokenFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const token = env.MESH_TOKEN;
  return token === undefined || token === "" ? undefined : token;
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
