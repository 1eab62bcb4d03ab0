import type { GlobalOptions } from "./global-options.js";
import type { Io } from "./io.js";

/** A flag of a command, in `node:util` parseArgs terms plus what help prints. */
export interface OptionSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
  /** Placeholder of the value in help, e.g. `N` in `--replicas N`. */
  readonly value?: string;
  readonly description: string;
  /** A flag the command cannot run without; shown in the synopsis. @default false */
  readonly required?: boolean;
}

/** A positional argument of a command. */
export interface ArgumentSpec {
  readonly name: string;
  readonly description: string;
  /** @default false */
  readonly required?: boolean;
}

/** What a command gets when it runs. */
export interface CommandContext {
  /** Flags every command has, resolved against the environment. */
  readonly global: GlobalOptions;
  /** The command's own flags, as parsed (absent flags are `undefined`). */
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  /** Positional arguments, already checked against {@link Command.arguments}. */
  readonly args: readonly string[];
  readonly io: Io;
}

/**
 * One `natsmesh` subcommand. Each lives in its own file under `commands/` and is listed in
 * `command-table.ts`; parsing, help and exit codes are shared.
 */
export interface Command {
  readonly name: string;
  /** One line for `natsmesh --help`. */
  readonly summary: string;
  /** A few more lines for `natsmesh <command> --help`. */
  readonly description?: string;
  readonly arguments: readonly ArgumentSpec[];
  readonly options: Readonly<Record<string, OptionSpec>>;
  /**
   * Runs the command. Resolves to the exit code; throws {@link CliError} for failures meant
   * for the user (anything else is reported as an unexpected failure, exit 1).
   */
  run(ctx: CommandContext): Promise<number>;
}
