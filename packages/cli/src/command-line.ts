import { parseArgs } from "node:util";
import type { Command, OptionSpec } from "./command.js";
import { usageError } from "./errors.js";
import { GLOBAL_OPTIONS } from "./global-options.js";

/** The flags and positionals of a command line. */
export interface ParsedCommandLine {
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly positionals: readonly string[];
}

/**
 * Finds a command word at `from` or later: the first argument that is neither a flag nor the
 * value of a global flag, so `natsmesh --server x ls` and `natsmesh ls --server x` both work.
 */
function commandIndex(argv: readonly string[], from = 0): number {
  for (let i = from; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") return -1;
    if (!arg.startsWith("-") || arg === "-") return i;
    const name = arg.slice(2);
    const spec = (GLOBAL_OPTIONS as Record<string, OptionSpec>)[name];
    if (arg.startsWith("--") && spec?.type === "string") i++;
  }
  return -1;
}

/**
 * Parses with `node:util` parseArgs, but checks flags itself from its tokens, so the messages
 * are short and name the flag as typed (parseArgs' own are long and meant for developers).
 */
function parseFlags(
  argv: readonly string[],
  options: Readonly<Record<string, OptionSpec>>,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const config = Object.fromEntries(
    Object.entries(options).map(([name, o]) => [
      name,
      o.short === undefined ? { type: o.type } : { type: o.type, short: o.short },
    ]),
  );
  const { tokens } = parseArgs({
    args: [...argv],
    options: config,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const values: Record<string, string | boolean | undefined> = {};
  const positionals: string[] = [];
  for (const token of tokens) {
    if (token.kind === "positional") positionals.push(token.value);
    if (token.kind !== "option") continue;
    const spec = options[token.name];
    if (spec === undefined) throw usageError(`unknown option ${token.rawName}`);
    if (spec.type === "boolean") {
      if (token.value !== undefined) throw usageError(`option ${token.rawName} takes no value`);
      values[token.name] = true;
    } else {
      // Without strict mode parseArgs hands over a following flag as the value; refuse it.
      const missing =
        token.value === undefined || (!token.inlineValue && token.value.startsWith("-"));
      if (missing) throw usageError(`option ${token.rawName} needs a value`);
      values[token.name] = token.value;
    }
  }
  return { values, positionals };
}

/**
 * Where the first `count` command words of `argv` are (fewer when it has fewer): the command,
 * and for a command of a group (`keys generate`) the word after it.
 */
function commandIndexes(argv: readonly string[], count: number): number[] {
  const found: number[] = [];
  for (let at = commandIndex(argv); at >= 0 && found.length < count; ) {
    found.push(at);
    at = commandIndex(argv, at + 1);
  }
  return found;
}

/**
 * The first two command words of `argv` (known or not): the command word, and the word after
 * it, which names the command when the first names a group (`natsmesh keys generate`).
 */
export function commandWords(argv: readonly string[]): [string | undefined, string | undefined] {
  const [first, second] = commandIndexes(argv, 2);
  return [
    first === undefined ? undefined : argv[first],
    second === undefined ? undefined : argv[second],
  ];
}

/**
 * Parses `argv` (without `node` and the script) for `command`, the command its
 * {@link commandWords} name, or for the global flags alone when there is none. Throws a usage
 * error for an unknown flag, a flag without its value, or a wrong number of positionals.
 */
export function parseCommandLine(
  argv: readonly string[],
  command: Command | undefined,
): ParsedCommandLine {
  // A command of a group is named by two words (`keys generate`), any other by one.
  const words = commandIndexes(argv, command === undefined ? 1 : command.name.split(" ").length);
  if (command === undefined || words.length === 0) {
    const parsed = parseFlags(argv, GLOBAL_OPTIONS);
    // Only after `--` can a word be left over here: nothing takes it.
    const [extra] = parsed.positionals;
    if (extra !== undefined) throw usageError(`unexpected argument ${JSON.stringify(extra)}`);
    return parsed;
  }
  const rest = argv.filter((_, i) => !words.includes(i));
  const { values, positionals } = parseFlags(rest, { ...GLOBAL_OPTIONS, ...command.options });
  if (values.help === true) return { values, positionals };
  const max = command.arguments.length;
  if (positionals.length > max) {
    throw usageError(`unexpected argument ${JSON.stringify(positionals[max])} for ${command.name}`);
  }
  const needed = command.arguments.filter((a) => a.required === true);
  if (positionals.length < needed.length) {
    throw usageError(`${command.name} needs <${needed[positionals.length]!.name}>`);
  }
  for (const [name, o] of Object.entries(command.options)) {
    if (o.required === true && values[name] === undefined) {
      throw usageError(`${command.name} needs --${name}`);
    }
  }
  return { values, positionals };
}
