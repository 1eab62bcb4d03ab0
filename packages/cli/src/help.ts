import type { Command, OptionSpec } from "./command.js";
import { GLOBAL_OPTIONS } from "./global-options.js";

function flag(name: string, o: OptionSpec): string {
  const long = `--${name}${o.value === undefined ? "" : ` ${o.value}`}`;
  return o.short === undefined ? `    ${long}` : `-${o.short}, ${long}`;
}

/** Two columns, the first padded to its widest cell. */
function columns(rows: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`);
}

function optionLines(options: Readonly<Record<string, OptionSpec>>): string[] {
  return columns(Object.entries(options).map(([name, o]) => [flag(name, o), o.description]));
}

function synopsis(command: Command): string {
  const args = command.arguments.map((a) => (a.required === true ? `<${a.name}>` : `[${a.name}]`));
  const flags = Object.entries(command.options)
    .filter(([, o]) => o.required === true)
    .map(([name, o]) => `--${name}${o.value === undefined ? "" : ` ${o.value}`}`);
  return ["natsmesh", command.name, ...args, ...flags, "[options]"].join(" ");
}

/** `natsmesh --help`: the commands with their one-line summaries, and the global flags. */
export function generalHelp(commands: readonly Command[]): string {
  return [
    "natsmesh: a service mesh on NATS",
    "",
    "Usage: natsmesh <command> [options]",
    "",
    "Commands:",
    ...columns(commands.map((c) => [c.name, c.summary])),
    "",
    "Global options:",
    ...optionLines(GLOBAL_OPTIONS),
    "",
    "Environment: NATS_URL, MESH_PREFIX, LOG_LEVEL, MESH_TOKEN, MESH_HEARTBEAT_MS, MESH_JWKS,",
    "MESH_ISSUER, MESH_AUDIENCE (flags win).",
    'Run "natsmesh <command> --help" for the options of a command.',
    "",
  ].join("\n");
}

/** `natsmesh <command> --help`: synopsis, description, arguments, the command's flags, global flags. */
export function commandHelp(command: Command): string {
  const lines = [`Usage: ${synopsis(command)}`, "", command.summary];
  if (command.description !== undefined) lines.push("", command.description);
  if (command.arguments.length > 0) {
    lines.push("", "Arguments:", ...columns(command.arguments.map((a) => [a.name, a.description])));
  }
  if (Object.keys(command.options).length > 0) {
    lines.push("", "Options:", ...optionLines(command.options));
  }
  lines.push("", "Global options:", ...optionLines(GLOBAL_OPTIONS), "");
  return lines.join("\n");
}

/** What a usage error prints under its message: the synopsis and where to read more. */
export function shortUsage(command: Command): string {
  return [
    `Usage: ${synopsis(command)}`,
    `Run "natsmesh ${command.name} --help" for its options.`,
    "",
  ].join("\n");
}

/** `natsmesh <group> --help`: the commands of a group such as `keys`. */
export function groupHelp(group: string, commands: readonly Command[]): string {
  return [
    `Usage: natsmesh ${group} <command> [options]`,
    "",
    "Commands:",
    ...columns(commands.map((c) => [c.name, c.summary])),
    "",
    `Run "natsmesh ${group} <command> --help" for the options of a command.`,
    "",
  ].join("\n");
}

/** What a usage error of a group (`natsmesh keys`, `natsmesh keys nope`) prints under its message. */
export function groupUsage(group: string, commands: readonly Command[]): string {
  const names = commands.map((c) => c.name.slice(group.length + 1)).join("|");
  return [
    `Usage: natsmesh ${group} <${names}> [options]`,
    `Run "natsmesh ${group} --help" for its commands.`,
    "",
  ].join("\n");
}
