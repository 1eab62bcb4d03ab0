/** Process exit codes of `natsmesh`. */
export const ExitCode = {
  ok: 0,
  /** Something failed at run time: NATS unreachable, JetStream off, a registry that would not start. */
  failure: 1,
  /**
   * The command line, the environment or an input file is wrong: unknown command or flag, bad
   * value, a key file or token that does not parse.
   */
  usage: 2,
  /**
   * `natsmesh call`: no instance took the call, or it did not finish in time (`UNAVAILABLE`,
   * `OVERLOADED`, `DEADLINE_EXCEEDED`); trying again later may work.
   */
  unavailable: 3,
  /** `natsmesh call`: the service answered with an error (`BAD_REQUEST`, `FORBIDDEN`, its own code…). */
  remoteError: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** What kind of failure a {@link CliError} is; decides the exit code. */
export const CliErrorCode = {
  /** A wrong command line or environment value: exit 2, with the usage. */
  usage: "USAGE",
  /** A wrong input (a file, a token): exit 2, without the usage, which would not help. */
  input: "INPUT",
  /** A failure at run time: exit 1. */
  failure: "FAILURE",
} as const;
export type CliErrorCode = (typeof CliErrorCode)[keyof typeof CliErrorCode];

/**
 * An error meant for the person at the terminal: its message is printed as one line after
 * `natsmesh: `, without a stack trace. `USAGE` errors also print the usage; they and `INPUT`
 * errors exit 2.
 */
export class CliError extends Error {
  readonly code: CliErrorCode;

  constructor(code: CliErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CliError";
    this.code = code;
  }

  get exitCode(): ExitCode {
    return this.code === CliErrorCode.failure ? ExitCode.failure : ExitCode.usage;
  }
}

/** A wrong command line or environment value: exit code 2. */
export function usageError(message: string): CliError {
  return new CliError(CliErrorCode.usage, message);
}

/**
 * Input that cannot be used (a file that is not a key, a string that is not a token): exit
 * code 2, like a usage error, but without printing the usage.
 */
export function inputError(message: string, cause?: unknown): CliError {
  return new CliError(CliErrorCode.input, message, cause === undefined ? undefined : { cause });
}

/** A failure at run time: exit code 1. */
export function failure(message: string, cause?: unknown): CliError {
  return new CliError(CliErrorCode.failure, message, cause === undefined ? undefined : { cause });
}

/**
 * An error's message followed by those of its causes, `outer: inner: innermost`, so a wrapped
 * failure (a library's "could not open the buckets") still says why on its one line.
 */
export function errorText(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e !== undefined && parts.length < 5; ) {
    const message = e instanceof Error ? e.message : String(e);
    if (!parts.includes(message)) parts.push(message);
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(": ");
}

/** The `code` of an error (a Node.js system error's `EADDRINUSE`, say) or of its causes. */
export function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; depth < 5; depth++) {
    if (typeof e !== "object" || e === null) return undefined;
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
