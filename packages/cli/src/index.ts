/**
 * The `natsmesh` command line: `ls`, `watch`, `registry`, `keys generate|publish` and
 * `token issue|inspect`, with more to come. The binary is `dist/bin.js`; `main()` runs the
 * same thing in-process.
 *
 * @module
 */

export type { ArgumentSpec, Command, CommandContext, OptionSpec } from "./command.js";
export { COMMANDS } from "./command-table.js";
export { CliError, CliErrorCode, ExitCode } from "./errors.js";
export type { GlobalOptions, LogLevel } from "./global-options.js";
export type { Io, OutStream } from "./io.js";
export { main } from "./main.js";
