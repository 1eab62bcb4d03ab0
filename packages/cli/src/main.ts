import { type Command, CommanderError } from "commander";
import { CliError, CliErrorCode, ExitCode, errorText } from "./errors.js";
import { type Io, note, processIo } from "./io.js";
import { createProgram, usageHint } from "./program.js";

/** Commander's outcomes that are not errors: help or the version was printed. */
const PRINTED = new Set(["commander.helpDisplayed", "commander.version"]);

function report(err: unknown, io: Io, running: Command | undefined): number {
  if (err instanceof CommanderError) {
    // Commander has printed the message (and the usage) already.
    return PRINTED.has(err.code) ? ExitCode.ok : ExitCode.usage;
  }
  if (err instanceof CliError) {
    note(io, err.message);
    if (err.code === CliErrorCode.usage && running !== undefined) {
      io.stderr.write(`${usageHint(running)}\n`);
    }
    return err.exitCode;
  }
  // Not one of ours: say what it was in one line; the stack only helps when debugging.
  const debug = /^(debug|trace)$/i.test(process.env.LOG_LEVEL ?? "");
  note(io, debug && err instanceof Error ? (err.stack ?? err.message) : errorText(err));
  return ExitCode.failure;
}

/**
 * Runs `natsmesh` with `argv` (the arguments after the script) and resolves to the exit code
 * (see {@link ExitCode}). Never throws; messages go to `io.stderr`.
 */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  let exitCode: number = ExitCode.ok;
  let running: Command | undefined;
  const program = createProgram(io, (code) => {
    exitCode = code;
  });
  program.hook("preAction", (_program, action) => {
    running = action;
  });
  try {
    await program.parseAsync([...argv], { from: "user" });
    return exitCode;
  } catch (err) {
    return report(err, io, running);
  }
}
