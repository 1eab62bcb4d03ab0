/**
 * The error codes of the contract, with their status and whether a caller may retry them on
 * another instance without knowing anything about the operation.
 */
export const ErrorCodes = {
  BAD_REQUEST: { status: 400, retryable: false },
  UNAUTHENTICATED: { status: 401, retryable: false },
  FORBIDDEN: { status: 403, retryable: false },
  NOT_FOUND: { status: 404, retryable: false },
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false },
  OVERLOADED: { status: 429, retryable: true },
  INTERNAL: { status: 500, retryable: false },
  UNAVAILABLE: { status: 503, retryable: true },
  DEADLINE_EXCEEDED: { status: 504, retryable: false },
} as const satisfies Record<string, { status: number; retryable: boolean }>;

/** A code of the contract's table. */
export type MeshErrorCode = keyof typeof ErrorCodes;

/** Options of {@link MeshError}; `cause` is passed to `Error`. */
export interface MeshErrorOptions extends ErrorOptions {
  /**
   * Status number sent as `Nats-Service-Error-Code`.
   * @default the table's status for a known code, else 500
   */
  status?: number;
  /** Structured detail sent to the caller in the error body. */
  data?: unknown;
  /**
   * Whether a caller may retry on another instance.
   * @default the table's value for a known code, else false
   */
  retryable?: boolean;
}

/**
 * The one error type of the mesh. Handlers may throw their own codes
 * (`new MeshError("INSUFFICIENT_FUNDS", "…", { status: 409 })`); callers get the same code,
 * status, message and data back.
 */
export class MeshError extends Error {
  override readonly name = "MeshError";
  /** A code of the table, or an application code such as `INSUFFICIENT_FUNDS`. */
  readonly code: MeshErrorCode | (string & {});
  readonly status: number;
  readonly data?: unknown;
  readonly retryable: boolean;

  constructor(
    code: MeshErrorCode | (string & {}),
    message: string,
    options: MeshErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const known = isKnownCode(code) ? ErrorCodes[code] : undefined;
    this.code = code;
    this.status = options.status ?? known?.status ?? 500;
    this.retryable = options.retryable ?? known?.retryable ?? false;
    if (options.data !== undefined) this.data = options.data;
  }
}

/** True for a code of the contract's table. */
export function isKnownCode(code: string): code is MeshErrorCode {
  return Object.hasOwn(ErrorCodes, code);
}

/** True when `err` is a {@link MeshError}, optionally with the given code. */
export function isMeshError(err: unknown, code?: string): err is MeshError {
  return err instanceof MeshError && (code === undefined || err.code === code);
}
