import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { generateKeyPair, type JsonWebKeySet, type KeyAlgorithm } from "@natsmesh/protocol";
import { CliError, ExitCode, failure, inputError } from "../errors.js";
import { kidsOf, readJwksFile, replaceFile } from "../files/jwks-file.js";
import { privateKeyFileName } from "../files/private-key-file.js";
import { writeSecretFile } from "../files/secret-file.js";
import { type Io, note } from "../io.js";
import type { GlobalOptions } from "../program.js";

/** Name of the public key set `keys generate` writes next to the private keys. */
const JWKS_FILE = "jwks.json";

/** Makes `dir` (owner-only, as it will hold a private key) unless it is already a directory. */
function ensureDirectory(dir: string): void {
  try {
    if (!statSync(dir).isDirectory()) throw inputError(`--out ${dir} is not a directory`);
    return;
  } catch (err) {
    if (err instanceof CliError || (err as { code?: unknown }).code !== "ENOENT") throw err;
  }
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw failure(`cannot create the directory ${dir}: ${(err as Error).message}`, err);
  }
}

/**
 * The key set already in `path`, `undefined` if there is none. A file that is not a key set is
 * refused, or with `force` reported through `onReplace` and treated as absent.
 */
function existingKeySet(
  path: string,
  force: boolean,
  onReplace: (reason: string) => void,
): JsonWebKeySet | undefined {
  try {
    statSync(path);
  } catch (err) {
    if ((err as { code?: unknown }).code === "ENOENT") return undefined;
    throw failure(`cannot look at ${path}: ${(err as Error).message}`, err);
  }
  try {
    return readJwksFile(path);
  } catch (err) {
    if (force) {
      onReplace((err as Error).message);
      return undefined;
    }
    throw inputError(
      `${(err as Error).message}; fix or remove it, or pass --force to replace it with a new key set`,
      err,
    );
  }
}

/** The flags of `natsmesh keys generate`. */
export interface KeysGenerateOptions {
  readonly alg: KeyAlgorithm;
  readonly out: string;
  readonly force: boolean;
}

/** `natsmesh keys generate`: a signing key pair as a private JWK file and a public JWKS file. */
export async function keysGenerate(
  global: GlobalOptions,
  { alg, out, force }: KeysGenerateOptions,
  io: Io,
): Promise<number> {
  ensureDirectory(out);
  const jwksFile = join(out, JWKS_FILE);
  // Checked before any key is made, so a refusal leaves nothing behind.
  const existing = existingKeySet(jwksFile, force, (reason) =>
    note(io, `${reason}; replacing it (--force)`),
  );

  const pair = await generateKeyPair({ alg });
  const privateKeyFile = join(out, privateKeyFileName(pair.kid));
  writeSecretFile(privateKeyFile, `${JSON.stringify(pair.privateJwk, null, 2)}\n`, force);
  const keys = [...(existing?.keys ?? []).filter((k) => k.kid !== pair.kid), pair.publicJwk];
  const jwks: JsonWebKeySet = { ...existing, keys };
  try {
    replaceFile(jwksFile, `${JSON.stringify(jwks, null, 2)}\n`);
  } catch (err) {
    throw failure(
      `wrote ${privateKeyFile} but could not write ${jwksFile}: ${(err as Error).message}`,
      err,
    );
  }

  if (global.json) {
    io.stdout.write(
      `${JSON.stringify({ kid: pair.kid, alg, privateKeyFile, jwksFile }, null, 2)}\n`,
    );
    return ExitCode.ok;
  }
  const publicNote =
    existing === undefined
      ? "new key set with this one key"
      : `key ADDED to the existing set, now ${keys.length} keys: ${kidsOf(jwks).join(", ")}`;
  io.stdout.write(
    [
      `kid          ${pair.kid} (${alg})`,
      `private key  ${privateKeyFile} (mode 0600: keep it secret)`,
      `public keys  ${jwksFile} (${publicNote})`,
      ...(existing === undefined
        ? []
        : [
            "Rotation: tokens signed with the old keys keep verifying. Publish this set, sign new",
            "tokens with the new key, and remove the old keys once their tokens have expired.",
          ]),
      `Next: natsmesh keys publish ${jwksFile}  (or --jwks ${jwksFile} on registries and agents)`,
      "",
    ].join("\n"),
  );
  return ExitCode.ok;
}
