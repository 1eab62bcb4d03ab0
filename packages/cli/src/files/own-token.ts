import { type TokenSource, tokenFromEnv } from "@natsmesh/protocol/internal";
import type { GlobalOptions } from "../program.js";

/**
 * This process's own token: `--token` (`MESH_TOKEN`), else the file `--token-file`
 * (`MESH_TOKEN_FILE`), read again whenever the token is refreshed, so whoever writes it can
 * rotate it without a restart.
 */
export function ownToken(
  global: GlobalOptions,
  tokenFile: string | undefined,
): TokenSource | undefined {
  if (global.token !== undefined) return global.token;
  return tokenFile === undefined ? undefined : tokenFromEnv({ MESH_TOKEN_FILE: tokenFile });
}
