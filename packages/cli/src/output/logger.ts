import { type DestinationStream, type Logger, pino } from "pino";
import { prettyFactory } from "pino-pretty";
import type { Io, OutStream } from "../io.js";
import type { LogLevel } from "../values.js";
import { colorsOn } from "./colors.js";

/**
 * The logger of a long-running command, on stdout (or `to`) at `level`: pino JSON for log
 * collectors (a pipe, a file, a container runtime, or `json`), human-readable lines when the
 * stream is a terminal. Both write synchronously, so nothing is lost when the process exits
 * right after a line.
 */
export function createCliLogger(
  level: LogLevel,
  io: Io,
  { json = false, to = io.stdout }: { json?: boolean; to?: OutStream } = {},
): Logger {
  if (json || to.isTTY !== true) {
    return pino({ level }, { write: (line: string) => void to.write(line) });
  }
  // The formatter rather than pino-pretty's stream: no worker, no pipe, just lines.
  const format = prettyFactory({
    colorize: colorsOn(to),
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "pid,hostname",
    singleLine: true,
  });
  const out: DestinationStream = { write: (line: string) => void to.write(format(line)) };
  return pino({ level }, out);
}
