import { MeshError } from "./errors.js";

/** Header names of the contract. NATS headers are case-sensitive; these are the exact names. */
export const Header = {
  ContentType: "Content-Type",
  Authorization: "Authorization",
  Deadline: "Mesh-Deadline",
  IdempotencyKey: "Mesh-Idempotency-Key",
  Attempt: "Mesh-Attempt",
  /** A reference to a token the receiver verified before, instead of `Authorization` (§11.6). */
  TokenRef: "Mesh-Token-Ref",
  TraceParent: "traceparent",
  TraceState: "tracestate",
  ServiceErrorCode: "Nats-Service-Error-Code",
  ServiceError: "Nats-Service-Error",
  MeshError: "Mesh-Error",
  /** Event id; JetStream stores an id once within the stream's duplicate window. */
  MsgId: "Nats-Msg-Id",
  /** Dead letters: the error's message. */
  ErrorMessage: "Mesh-Error-Message",
  /** Dead letters: the service whose consumer gave up. */
  DlqService: "Mesh-Dlq-Service",
  /** Dead letters: how many times the event had been delivered. */
  DlqDeliveries: "Mesh-Dlq-Deliveries",
  /** Dead letters: the event's original subject, `P.evt.<event>`. */
  DlqSubject: "Mesh-Dlq-Subject",
  /** Dead letters: the event's sequence number in `<P>_events`. */
  DlqSeq: "Mesh-Dlq-Seq",
  /** Dead letters: the event's id (its `Nats-Msg-Id`); the dead letter has an id of its own. */
  DlqEventId: "Mesh-Dlq-Event-Id",
  /** A replayed event: only this service's durable consumers handle it; the others skip it. */
  ReplayService: "Mesh-Replay-Service",
} as const;

/** A header name of the contract. */
export type HeaderName = (typeof Header)[keyof typeof Header];

/** Highest attempt number accepted in `Mesh-Attempt`. */
export const MAX_ATTEMPT = 1000;

const DIGITS = /^[0-9]{1,16}$/;

/**
 * Parses `Mesh-Deadline` (Unix epoch milliseconds). Absent or empty gives `undefined` (no
 * deadline); anything but a positive integer gives a `BAD_REQUEST` error, returned, not thrown.
 */
export function parseDeadline(value: string | undefined): number | undefined | MeshError {
  if (value === undefined || value === "") return undefined;
  if (!DIGITS.test(value)) {
    return new MeshError("BAD_REQUEST", `${Header.Deadline} must be Unix epoch milliseconds`);
  }
  const ms = Number(value);
  return ms > 0 && Number.isSafeInteger(ms)
    ? ms
    : new MeshError("BAD_REQUEST", `${Header.Deadline} is out of range`);
}

/**
 * Parses `Mesh-Attempt`. Absent or empty gives 1; anything but an integer from 1 to
 * {@link MAX_ATTEMPT} gives a `BAD_REQUEST` error, returned, not thrown.
 */
export function parseAttempt(value: string | undefined): number | MeshError {
  if (value === undefined || value === "") return 1;
  const n = DIGITS.test(value) ? Number(value) : Number.NaN;
  return n >= 1 && n <= MAX_ATTEMPT
    ? n
    : new MeshError("BAD_REQUEST", `${Header.Attempt} must be an integer from 1 to ${MAX_ATTEMPT}`);
}

/** Longest header value the mesh writes from free text (error messages). */
export const MAX_TEXT_HEADER = 512;

/** Makes free text safe as a NATS header value: no CR/LF, bounded length. */
export function headerText(text: string): string {
  // A CR or LF would end the header line and let a peer inject headers.
  const clean = text.replace(/[\r\n]+/g, " ");
  return clean.length > MAX_TEXT_HEADER ? `${clean.slice(0, MAX_TEXT_HEADER - 1)}…` : clean;
}
