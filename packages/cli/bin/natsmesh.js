#!/usr/bin/env node
// The `natsmesh` command. The CLI is TypeScript built into dist/; this file is committed, so
// `npm ci` links the command even in a fresh clone where nothing is built yet.
import { existsSync } from "node:fs";

const built = new URL("../dist/bin.js", import.meta.url);
if (!existsSync(built)) {
  process.stderr.write(
    "natsmesh: the CLI is not built yet (packages/cli/dist/bin.js is missing).\n" +
      "Run `npm run build` at the root of the natsmesh repository, then try again.\n",
  );
  process.exit(1);
}
await import(built.href);
