import { randomBytes } from "node:crypto";

let seq = 0;
const processTag = `${process.pid.toString(36)}${randomBytes(2).toString("hex")}`;

/**
 * A mesh prefix that no other test, test file or test process uses: `tag`, this process's tag
 * and a counter. Letters and digits only, so it is valid as a subject token and inside KV
 * bucket and stream names (`<prefix>_presence`).
 *
 * @param tag - what the prefix is for, to read it in server logs. @default "t"
 */
export function uniquePrefix(tag = "t"): string {
  if (!/^[A-Za-z][A-Za-z0-9]{0,15}$/.test(tag)) {
    throw new TypeError("tag must be 1-16 letters and digits, starting with a letter");
  }
  return `${tag}${processTag}${(seq++).toString(36)}`;
}
