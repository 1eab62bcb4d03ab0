import type { Command } from "./command.js";
import { ls } from "./commands/ls.js";
import { registry } from "./commands/registry.js";
import { watch } from "./commands/watch.js";

/** Every `natsmesh` command, in the order `--help` lists them. A new command is a file and a line here. */
export const COMMANDS: readonly Command[] = [ls, watch, registry];

/** The command named `name`, if there is one. */
export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}
