import type { TokenGateOptions } from "@natsmesh/protocol/internal";
import type { OptionSpec } from "./command.js";
import { usageError } from "./errors.js";
import type { Env } from "./global-options.js";
import { flagOrEnv } from "./option-values.js";

type Values = Readonly<Record<string, string | boolean | undefined>>;

/** The flags of a command that checks tokens (`registry`, later `agent`). */
export const AUTH_OPTIONS = {
  jwks: {
    type: "string",
    value: "JWKS",
    description: 'Check tokens with these public keys: a file, inline JSON or "kv" (env MESH_JWKS)',
  },
  issuer: {
    type: "string",
    value: "ISS",
    description: "Required iss of tokens (env MESH_ISSUER; default: not checked)",
  },
  audience: {
    type: "string",
    value: "AUD",
    description: "Required aud of tokens (env MESH_AUDIENCE; default natsmesh)",
  },
} as const satisfies Record<string, OptionSpec>;

/**
 * Token checking from `--jwks`, `--issuer` and `--audience`, falling back on `MESH_JWKS`,
 * `MESH_ISSUER` and `MESH_AUDIENCE`; `undefined` (no checks) without a key set. The key set is
 * passed on as given (a path, inline JSON or `"kv"`): the library loads and checks it.
 */
export function resolveAuthOptions(values: Values, env: Env): TokenGateOptions | undefined {
  const jwks = flagOrEnv(values, env, "jwks", "MESH_JWKS");
  const issuer = flagOrEnv(values, env, "issuer", "MESH_ISSUER");
  const audience = flagOrEnv(values, env, "audience", "MESH_AUDIENCE");
  if (jwks === undefined) {
    // The variables are shared by every process of a mesh, so only a flag is a mistake here.
    for (const flag of ["issuer", "audience"] as const) {
      if (values[flag] !== undefined) throw usageError(`--${flag} needs --jwks (or MESH_JWKS)`);
    }
    return undefined;
  }
  return {
    jwks,
    ...(issuer === undefined ? {} : { issuer }),
    ...(audience === undefined ? {} : { audience }),
  };
}
