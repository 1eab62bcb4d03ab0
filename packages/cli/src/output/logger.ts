import { type DestinationStream, type Logger, pino } from "pino";
import { prettyFactory } from "pino-pretty";
import type { Io } from "../io.js";
import type { LogLevel } from "../values.js";
import { colorsOn } from "./colors.js";

/**
 * The logger of a long-running command, on stdout at `level`: pino JSON for log collectors
 * (a pipe, a file, a container runtime), human-readable lines when stdout is a terminal.
 * Both write synchronously, so nothing is lost when the process exits right after a line.
 */
export function createCliLogger(level: LogLevel, io: Io): Logger {
  if (io.stdout.isTTY !== true) {
    return pino({ level }, { write: (line: string) => void io.stdout.write(line) });
  }
  // The formatter rather than pino-pretty's stream: no worker, no pipe, just lines.
  const format = prettyFactory({
    colorize: colorsOn(io.stdout),
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "pid,hostname",
    singleLine: true,
  });
  const out: DestinationStream = { write: (line: string) => void io.stdout.write(format(line)) };
  return pino({ level }, out);
}
