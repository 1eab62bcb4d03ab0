/** A stream the CLI writes to: `process.stdout`-like. */
export interface OutStream {
  write(text: string): unknown;
  /** True for a terminal; decides colours and pretty logs. */
  readonly isTTY?: boolean;
}

/**
 * Where a command reads its input and writes its output; `process` in the binary. (Variables
 * are read from `process.env`, where commander reads the options' fallbacks.)
 */
export interface Io {
  /** Input for arguments given as `-`; none when omitted (such an argument is then empty). */
  readonly stdin?: AsyncIterable<string | Uint8Array>;
  readonly stdout: OutStream;
  readonly stderr: OutStream;
}

/** The process's own streams. */
export function processIo(): Io {
  return {
    // A getter: touching process.stdin opens it, which only a command reading it should do.
    get stdin() {
      return process.stdin;
    },
    stdout: process.stdout,
    stderr: process.stderr,
  };
}

/** Reads `io.stdin` to its end as UTF-8, up to `limit` characters; more is an error. */
export async function readStdin(io: Io, limit: number): Promise<string> {
  if (io.stdin === undefined) return "";
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of io.stdin) {
    text += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
    if (text.length > limit) throw new RangeError(`more than ${limit} characters on stdin`);
  }
  return text + decoder.decode();
}

/** Prints `natsmesh: <message>` on stderr: notes, warnings and errors for a person. */
export function note(io: Io, message: string): void {
  io.stderr.write(`natsmesh: ${message}\n`);
}
