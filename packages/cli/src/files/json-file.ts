import { readFileSync } from "node:fs";
import { inputError } from "../errors.js";

/** Why a file could not be read, in a few words; told apart by code, not message text. */
function readFailure(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "ENOENT") return "no such file";
  if (code === "EACCES" || code === "EPERM") return "permission denied";
  if (code === "EISDIR") return "it is a directory";
  return err instanceof Error ? err.message : String(err);
}

/**
 * The parsed JSON of the file at `path`. A file that cannot be read or is not JSON is an input
 * error (exit 2) saying which and naming `what` the file should have been.
 */
export function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw inputError(`cannot read ${what} ${path}: ${readFailure(err)}`, err);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw inputError(`${what} ${path} is not JSON`, err);
  }
}
