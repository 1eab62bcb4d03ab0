import type { Command } from "./command.js";
import { keysGenerate } from "./commands/keys-generate.js";
import { keysPublish } from "./commands/keys-publish.js";
import { ls } from "./commands/ls.js";
import { registry } from "./commands/registry.js";
import { tokenInspect } from "./commands/token-inspect.js";
import { tokenIssue } from "./commands/token-issue.js";
import { watch } from "./commands/watch.js";

/**
 * Every `natsmesh` command, in the order `--help` lists them. A new command is a file and a
 * line here; a name of two words (`keys generate`) puts it in the group its first word names.
 */
export const COMMANDS: readonly Command[] = [
  ls,
  watch,
  registry,
  keysGenerate,
  keysPublish,
  tokenIssue,
  tokenInspect,
];

/** The command named `name` (`ls`, `keys generate`), if there is one. */
export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** The commands of the group `word` names (`keys`: `keys generate`, `keys publish`); [] if none. */
export function commandGroup(word: string): Command[] {
  return COMMANDS.filter((c) => c.name.startsWith(`${word} `));
}
