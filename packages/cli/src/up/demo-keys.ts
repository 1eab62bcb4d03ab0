import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { generateKeyPair, issueToken } from "@natsmesh/protocol";
import type { TokenSource } from "@natsmesh/protocol/internal";
import { replaceFile } from "../files/jwks-file.js";
import { readPrivateKey } from "../files/private-key-file.js";
import { writeSecretFile } from "../files/secret-file.js";
import type { Io } from "../io.js";

/** Lifetime of the agents' tokens; each is issued again before it expires. */
const AGENT_TOKEN_TTL_S = 3600;
/** Lifetime of the caller token `natsmesh up --auth` prints. */
export const CALLER_TOKEN_TTL_S = 12 * 3600;
/** What the printed caller token may do: call anything, emit any event, read any stats. */
export const CALLER_SCOPE = ["*", "emit:>", "stats:*"] as const;

/** The keys and tokens of a mesh run with `--auth`. */
export interface DemoKeys {
  /** The public keys, for the registry and the agents (`--jwks`). */
  readonly jwksFile: string;
  /** A token for people and scripts to call with, also written to {@link callerTokenFile}. */
  readonly callerToken: string;
  readonly callerTokenFile: string;
  /** The private key the registry signs presence records with (`auth.signingKey`). */
  readonly presenceKeyFile: string;
  /** Its public half, for the SDK side (`presence.keys`, `MESH_PRESENCE_KEYS`). */
  readonly presenceJwksFile: string;
  /** A token of `sub` holding `scope`, issued again (by the SDK or agent) before it expires. */
  tokenSource(sub: string, scope: readonly string[]): TokenSource;
}

/**
 * The signing key under `<dir>/keys/` (made on the first run, kept after, so tokens printed by
 * an earlier run stay valid until they expire), its public key set, and a caller token; and the
 * registry's presence key pair beside them, kept likewise, so a caller given the public half
 * by an earlier run still takes the records. The private keys never leave this process's
 * directory: mode 0600 in a 0700 directory.
 */
export async function prepareDemoKeys(dir: string, io: Io): Promise<DemoKeys> {
  const keys = join(dir, "keys");
  mkdirSync(keys, { recursive: true, mode: 0o700 });
  const privateFile = join(keys, "signing.private.jwk.json");
  const jwksFile = join(keys, "jwks.json");
  let key: Parameters<typeof issueToken>[0]["key"];
  if (existsSync(privateFile) && existsSync(jwksFile)) {
    key = readPrivateKey(privateFile, io);
  } else {
    const pair = await generateKeyPair();
    writeSecretFile(privateFile, `${JSON.stringify(pair.privateJwk, null, 2)}\n`, true);
    replaceFile(jwksFile, `${JSON.stringify({ keys: [pair.publicJwk] }, null, 2)}\n`);
    key = pair.privateJwk;
  }
  const presenceKeyFile = join(keys, "presence.private.jwk.json");
  const presenceJwksFile = join(keys, "presence-jwks.json");
  if (!existsSync(presenceKeyFile) || !existsSync(presenceJwksFile)) {
    // A key of its own, not the token key: whoever holds it can only sign records.
    const pair = await generateKeyPair();
    writeSecretFile(presenceKeyFile, `${JSON.stringify(pair.privateJwk, null, 2)}\n`, true);
    replaceFile(presenceJwksFile, `${JSON.stringify({ keys: [pair.publicJwk] }, null, 2)}\n`);
  }
  const issue = (sub: string, scope: readonly string[], ttl: number) =>
    issueToken({ key, sub, scope: [...scope], ttl });
  const callerToken = await issue("natsmesh-up-caller", CALLER_SCOPE, CALLER_TOKEN_TTL_S);
  const callerTokenFile = join(keys, "caller.jwt");
  writeSecretFile(callerTokenFile, `${callerToken}\n`, true);
  return {
    jwksFile,
    callerToken,
    callerTokenFile,
    presenceKeyFile,
    presenceJwksFile,
    tokenSource: (sub, scope) => () => issue(sub, scope, AGENT_TOKEN_TTL_S),
  };
}
