/**
 * The `natsmesh` command line: `agent`, `ls`, `watch`, `registry`, `dashboard`, `events`, `dlq`,
 * `keys generate|publish` and `token issue|inspect`. The binary is `dist/bin.js`; `main()` runs the same thing in-process.
 *
 * @module
 */

export { CliError, CliErrorCode, ExitCode } from "./errors.js";
export type { Io, OutStream } from "./io.js";
export { main } from "./main.js";
export type { GlobalOptions } from "./program.js";
export type { LogLevel } from "./values.js";
