/** A stream the CLI writes to: `process.stdout`-like. */
export interface OutStream {
  write(text: string): unknown;
  /** True for a terminal; decides colours and pretty logs. */
  readonly isTTY?: boolean;
}

/** Where a command reads its environment and writes its output; `process` in the binary. */
export interface Io {
  readonly stdout: OutStream;
  readonly stderr: OutStream;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** The process's own streams and environment. */
export function processIo(): Io {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

/** Prints `natsmesh: <message>` on stderr: notes, warnings and errors for a person. */
export function note(io: Io, message: string): void {
  io.stderr.write(`natsmesh: ${message}\n`);
}
