import { readFileSync } from "node:fs";

let cached: string | undefined;

/** The version of `@natsmesh/cli`, read from its package.json (one level above `dist/`). */
export function cliVersion(): string {
  if (cached === undefined) {
    const url = new URL("../package.json", import.meta.url);
    cached = String((JSON.parse(readFileSync(url, "utf8")) as { version: unknown }).version);
  }
  return cached;
}
