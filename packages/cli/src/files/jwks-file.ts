import { renameSync, rmSync, writeFileSync } from "node:fs";
import { assertJwks, type JsonWebKeySet } from "@natsmesh/protocol";
import { inputError } from "../errors.js";
import { readJsonFile } from "./json-file.js";

/**
 * The key set of public keys in the file at `path`. A file that cannot be read, is not JSON, or
 * is not a JWKS of public keys (private or symmetric key material included) is an input error
 * (exit 2) saying which.
 */
export function readJwksFile(path: string): JsonWebKeySet {
  const value = readJsonFile(path, "the JWKS file");
  try {
    assertJwks(value);
  } catch (err) {
    throw inputError(`the JWKS file ${path} is refused: ${(err as Error).message}`, err);
  }
  return value;
}

/**
 * Replaces the file at `path` with `text` in one step (a temporary file, then a rename), so a
 * registry or agent watching it never reads half a key set.
 */
export function replaceFile(path: string, text: string): void {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, text, { mode: 0o644 });
    renameSync(temporary, path);
  } finally {
    rmSync(temporary, { force: true });
  }
}

/** The `kid`s of a key set, `(no kid)` for a key without one. */
export function kidsOf(jwks: JsonWebKeySet): string[] {
  return jwks.keys.map((k) => k.kid ?? "(no kid)");
}
