import { inputError } from "./errors.js";
import { type Io, readStdin } from "./io.js";

/** Most characters of a JSON argument read from stdin. */
export const MAX_STDIN = 1024 * 1024;

/**
 * The value of a JSON command-line argument (a payload): the text itself, or what stdin holds
 * for `-`; `undefined` when the argument is absent. Text that is not JSON, or more than
 * {@link MAX_STDIN} characters on stdin, is an input error (exit 2).
 */
export async function jsonArgument(arg: string | undefined, io: Io): Promise<unknown> {
  if (arg === undefined) return undefined;
  let text = arg;
  if (arg === "-") {
    try {
      text = await readStdin(io, MAX_STDIN);
    } catch (err) {
      if (err instanceof RangeError) throw inputError(`the payload is too large: ${err.message}`);
      throw err;
    }
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw inputError(`the payload is not JSON: ${(err as Error).message}`, err);
  }
}
