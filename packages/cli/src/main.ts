import type { Command } from "./command.js";
import { commandWord, parseCommandLine } from "./command-line.js";
import { COMMANDS, findCommand } from "./command-table.js";
import { CliError, ExitCode, errorText, usageError } from "./errors.js";
import { resolveGlobalOptions } from "./global-options.js";
import { commandHelp, generalHelp, shortUsage } from "./help.js";
import { type Io, note, processIo } from "./io.js";
import { cliVersion } from "./version.js";

function report(err: unknown, io: Io, command: Command | undefined): number {
  if (err instanceof CliError) {
    note(io, err.message);
    if (err.exitCode === ExitCode.usage) {
      io.stderr.write(`\n${command === undefined ? generalHelp(COMMANDS) : shortUsage(command)}`);
    }
    return err.exitCode;
  }
  // Not one of ours: say what it was in one line; the stack only helps when debugging.
  const debug = /^(debug|trace)$/i.test(io.env.LOG_LEVEL ?? "");
  const text = debug && err instanceof Error ? (err.stack ?? err.message) : errorText(err);
  note(io, text);
  return ExitCode.failure;
}

/**
 * Runs `natsmesh` with `argv` (the arguments after the script) and resolves to the exit code:
 * 0 ok, 1 failure at run time, 2 usage error. Never throws; messages go to `io.stderr`.
 */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  const word = commandWord(argv);
  // Known before parsing, so a bad flag of a command is answered with that command's usage.
  const command = word === undefined ? undefined : findCommand(word);
  try {
    if (word !== undefined && command === undefined) {
      throw usageError(`unknown command ${JSON.stringify(word)}`);
    }
    const line = parseCommandLine(argv, command);
    if (line.values.version === true) {
      io.stdout.write(`${cliVersion()}\n`);
      return ExitCode.ok;
    }
    if (command === undefined) {
      if (line.values.help === true) {
        io.stdout.write(generalHelp(COMMANDS));
        return ExitCode.ok;
      }
      throw usageError("no command given");
    }
    if (line.values.help === true) {
      io.stdout.write(commandHelp(command));
      return ExitCode.ok;
    }
    const global = resolveGlobalOptions(line.values, io.env);
    return await command.run({ global, values: line.values, args: line.positionals, io });
  } catch (err) {
    return report(err, io, command);
  }
}
