import { closeSync, fchmodSync, fstatSync, openSync, rmSync, writeFileSync } from "node:fs";
import { failure, inputError } from "../errors.js";

const SECRET_MODE = 0o600;

/**
 * Writes a secret to a new file readable by its owner only (mode 0600), checked before the
 * secret goes in. An existing file is an input error unless `overwrite`; it then gets mode 0600
 * too, whatever it had.
 */
export function writeSecretFile(path: string, text: string, overwrite: boolean): void {
  let fd: number;
  try {
    // "wx": O_EXCL, so an existing file (or a symlink planted there) is never written through.
    fd = openSync(path, overwrite ? "w" : "wx", SECRET_MODE);
  } catch (err) {
    if ((err as { code?: unknown }).code === "EEXIST") {
      throw inputError(`${path} already exists; pass --force to overwrite it`, err);
    }
    throw failure(`cannot create ${path}: ${(err as Error).message}`, err);
  }
  let written = false;
  try {
    // The umask, or the mode of a file being overwritten, must not leave it readable by others.
    fchmodSync(fd, SECRET_MODE);
    const mode = fstatSync(fd).mode & 0o777;
    if (process.platform !== "win32" && mode !== SECRET_MODE) {
      throw failure(
        `${path} has mode 0${mode.toString(8)} instead of 0600; not writing a secret to it`,
      );
    }
    writeFileSync(fd, text);
    written = true;
  } finally {
    closeSync(fd);
    if (!written && !overwrite) rmSync(path, { force: true });
  }
}
