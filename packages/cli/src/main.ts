import type { Command } from "./command.js";
import { commandWords, parseCommandLine } from "./command-line.js";
import { COMMANDS, commandGroup, findCommand } from "./command-table.js";
import { CliError, CliErrorCode, ExitCode, errorText, usageError } from "./errors.js";
import { resolveGlobalOptions } from "./global-options.js";
import { commandHelp, generalHelp, groupHelp, groupUsage, shortUsage } from "./help.js";
import { type Io, note, processIo } from "./io.js";
import { cliVersion } from "./version.js";

/** What the command line names: a command, a group of commands (`keys`), both, or neither. */
interface Target {
  readonly command: Command | undefined;
  /** The group's word and commands, when the first command word names a group. */
  readonly group: { readonly word: string; readonly commands: readonly Command[] } | undefined;
  /** The command words as typed, for "unknown command" messages. */
  readonly typed: string | undefined;
}

function findTarget(argv: readonly string[]): Target {
  const [word, next] = commandWords(argv);
  if (word === undefined) return { command: undefined, group: undefined, typed: undefined };
  const commands = commandGroup(word);
  if (commands.length === 0) return { command: findCommand(word), group: undefined, typed: word };
  const typed = next === undefined ? word : `${word} ${next}`;
  return { command: findCommand(typed), group: { word, commands }, typed };
}

/** The usage printed under a usage error: the command's, its group's, or the general help. */
function usageText(target: Target): string {
  if (target.command !== undefined) return shortUsage(target.command);
  if (target.group !== undefined) return groupUsage(target.group.word, target.group.commands);
  return generalHelp(COMMANDS);
}

function report(err: unknown, io: Io, target: Target): number {
  if (err instanceof CliError) {
    note(io, err.message);
    if (err.code === CliErrorCode.usage) io.stderr.write(`\n${usageText(target)}`);
    return err.exitCode;
  }
  // Not one of ours: say what it was in one line; the stack only helps when debugging.
  const debug = /^(debug|trace)$/i.test(io.env.LOG_LEVEL ?? "");
  const text = debug && err instanceof Error ? (err.stack ?? err.message) : errorText(err);
  note(io, text);
  return ExitCode.failure;
}

/** True when `argv` asks for help before any `--`. */
function asksForHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === "--help" || a === "-h");
}

/** A group named without one of its commands: its help when asked for, else a usage error. */
function runGroup(argv: readonly string[], target: Target, io: Io): number {
  const { word, commands } = target.group!;
  const names = commands.map((c) => c.name.slice(word.length + 1)).join(", ");
  if (target.typed !== word) {
    throw usageError(`unknown command ${JSON.stringify(target.typed)} (${word} has ${names})`);
  }
  if (asksForHelp(argv)) {
    io.stdout.write(groupHelp(word, commands));
    return ExitCode.ok;
  }
  throw usageError(`${word} needs a command: ${names}`);
}

/**
 * Runs `natsmesh` with `argv` (the arguments after the script) and resolves to the exit code:
 * 0 ok, 1 failure at run time, 2 usage error or unusable input. Never throws; messages go to
 * `io.stderr`.
 */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  // Known before parsing, so a bad flag of a command is answered with that command's usage.
  const target = findTarget(argv);
  const { command } = target;
  try {
    if (target.typed !== undefined && command === undefined) {
      if (target.group !== undefined) return runGroup(argv, target, io);
      throw usageError(`unknown command ${JSON.stringify(target.typed)}`);
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
    return report(err, io, target);
  }
}
