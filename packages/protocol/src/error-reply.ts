import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  type MsgHdrs,
  NoRespondersError,
  RequestError,
  TimeoutError,
} from "@nats-io/nats-core";
import { ErrorCodes, isKnownCode, MeshError, type MeshErrorCode } from "./errors.js";
import { Header, headerText } from "./headers.js";
import { isIntInRange } from "./integers.js";

/** The body of an error reply, encoded in the request's codec. */
export interface ErrorBody {
  code: string;
  status: number;
  message: string;
  data?: unknown;
}

const CODE = /^[A-Za-z0-9_.-]{1,64}$/;

/** True when `code` may travel in the `Mesh-Error` header: `[A-Za-z0-9_.-]{1,64}`. */
export function isValidErrorCode(code: unknown): code is string {
  return typeof code === "string" && CODE.test(code);
}

/**
 * Writes the error headers of a reply (`Nats-Service-Error-Code`, `Nats-Service-Error`,
 * `Mesh-Error`) and returns the body to encode. The message is made header-safe.
 */
export function errorReply(err: MeshError, headers: MsgHdrs): ErrorBody {
  const code = isValidErrorCode(err.code) ? err.code : "INTERNAL";
  const status = validStatus(err.status) ? err.status : 500;
  headers.set(Header.ServiceErrorCode, String(status));
  headers.set(Header.ServiceError, headerText(err.message));
  headers.set(Header.MeshError, code);
  const body: ErrorBody = { code, status, message: err.message };
  if (err.data !== undefined) body.data = err.data;
  return body;
}

const BY_STATUS = new Map<number, MeshErrorCode>(
  Object.entries(ErrorCodes).map(([code, { status }]) => [status, code as MeshErrorCode]),
);

/**
 * Reads an error reply. Returns `undefined` when the reply carries no error headers. A reply of
 * a plain NATS micro service (status and message only) gets the table's code for its status.
 * `body` is the decoded body, or `undefined` when it did not decode; hostile values are ignored.
 */
export function errorFromReply(headers: MsgHdrs | undefined, body: unknown): MeshError | undefined {
  if (headers === undefined) return undefined;
  const meshCode = headers.get(Header.MeshError);
  const statusText = headers.get(Header.ServiceErrorCode);
  if (meshCode === "" && statusText === "") return undefined;

  const b = (body !== null && typeof body === "object" ? body : {}) as Partial<ErrorBody>;
  const parsed = Number.parseInt(statusText, 10);
  const status = validStatus(parsed) ? parsed : 500;
  const code = isValidErrorCode(meshCode) ? meshCode : (BY_STATUS.get(status) ?? "INTERNAL");
  const message =
    typeof b.message === "string" ? b.message : headers.get(Header.ServiceError) || code;
  return new MeshError(code, message, {
    status,
    ...(b.data === undefined ? {} : { data: b.data }),
    ...(isKnownCode(code) ? {} : { retryable: false }),
  });
}

/**
 * Maps anything thrown into a {@link MeshError}: a `MeshError` as it is; nats.js "no responders"
 * and connection errors to `UNAVAILABLE`; timeouts to `DEADLINE_EXCEEDED`; the rest to
 * `INTERNAL` with a generic message (the original is kept as `cause`, never sent).
 */
export function toMeshError(err: unknown): MeshError {
  if (err instanceof MeshError) return err;
  if (err instanceof RequestError && err.cause !== undefined) {
    const mapped = toMeshError(err.cause);
    if (mapped.code !== "INTERNAL") return mapped;
  }
  if (err instanceof NoRespondersError) {
    return new MeshError("UNAVAILABLE", "no instance is listening (no responders)", { cause: err });
  }
  if (err instanceof TimeoutError) {
    return new MeshError("DEADLINE_EXCEEDED", "the call timed out", { cause: err });
  }
  if (
    err instanceof ClosedConnectionError ||
    err instanceof DrainingConnectionError ||
    err instanceof ConnectionError
  ) {
    return new MeshError("UNAVAILABLE", "the NATS connection is not usable", { cause: err });
  }
  return new MeshError("INTERNAL", "internal error", { cause: err });
}

function validStatus(status: number): boolean {
  return isIntInRange(status, 100, 599);
}
