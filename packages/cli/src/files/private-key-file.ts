import { statSync } from "node:fs";
import { KeyAlgorithm } from "@natsmesh/protocol";
import type { JWK } from "jose";
import { inputError } from "../errors.js";
import { type Io, note } from "../io.js";
import { readJsonFile } from "./json-file.js";

/** What `natsmesh keys generate` names a private key file. */
export function privateKeyFileName(kid: string): string {
  return `${kid}.private.jwk.json`;
}

const ALGORITHMS: readonly string[] = Object.values(KeyAlgorithm);
const WHERE = "the <kid>.private.jwk.json file that `natsmesh keys generate` writes";

/**
 * The private signing key (a JWK with `d` and an `alg` of EdDSA, ES256 or RS256) in the file at
 * `path`; anything else is an input error (exit 2) saying what the file holds instead. Warns
 * when others may read the file, as ssh does, but goes on.
 */
export function readPrivateKey(path: string, io: Io): JWK & { alg: KeyAlgorithm } {
  const value = readJsonFile(path, "the key file");
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw inputError(`the key file ${path} is not a JWK; pass ${WHERE}`);
  }
  const jwk = value as JWK & { keys?: unknown };
  if (Array.isArray(jwk.keys)) {
    throw inputError(
      `the key file ${path} is a key set (public keys), not a private key; pass ${WHERE}`,
    );
  }
  if (typeof jwk.kty !== "string") throw inputError(`the key file ${path} is not a JWK (no "kty")`);
  if (jwk.kty === "oct") {
    throw inputError(
      `the key file ${path} holds a symmetric key; tokens are signed with EdDSA, ES256 or RS256 keys`,
    );
  }
  if (typeof jwk.d !== "string") {
    throw inputError(`the key file ${path} holds a public key; pass ${WHERE}`);
  }
  if (typeof jwk.alg !== "string" || !ALGORITHMS.includes(jwk.alg)) {
    throw inputError(
      `the key in ${path} must have "alg" set to ${ALGORITHMS.join(", ")}, got ${JSON.stringify(jwk.alg ?? null)}`,
    );
  }
  warnIfShared(path, io);
  return jwk as JWK & { alg: KeyAlgorithm };
}

function warnIfShared(path: string, io: Io): void {
  if (process.platform === "win32") return;
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    note(
      io,
      `warning: others can read the private key ${path} (mode 0${mode.toString(8)}); chmod 600 it`,
    );
  }
}
