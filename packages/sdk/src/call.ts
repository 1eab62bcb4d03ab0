import { InvalidArgumentError, type Msg, type NatsConnection, nuid } from "@nats-io/nats-core";
import {
  type Codec,
  checkPayloadSize,
  childTraceparent,
  codecs,
  errorFromReply,
  Header,
  MeshError,
  MSGPACK_REPLY_HEADER,
  rawHeaderBlock,
  type Subjects,
  sameBytes,
  toMeshError,
} from "@natsmesh/protocol";
import type { Link } from "./link.js";
import { checkCodec, checkInt, type RequestOptions, type ResolvedMeshOptions } from "./options.js";
import type { ReplyMux } from "./reply-mux.js";
import { renderUserHeaders, requestHeaders } from "./request-headers.js";

/** What every call of one mesh shares. */
export interface CallScope {
  readonly nc: NatsConnection;
  readonly mux: ReplyMux;
  readonly link: Link;
  readonly subjects: Subjects;
  readonly options: ResolvedMeshOptions;
}

/** Backoff before retrying a call that never ran: 5–25 ms, growing with the attempt. */
function backoffMs(attempt: number): number {
  return Math.min(200, 5 * attempt + Math.random() * 20 * attempt);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function decodeReply(msg: Msg, codec: Codec): unknown {
  try {
    return codec.decode(msg.data);
  } catch (err) {
    throw new MeshError("INTERNAL", "the reply did not decode", { cause: err });
  }
}

/**
 * Reads a reply: "no responders" (a 503 status with no body) is `UNAVAILABLE`; error headers
 * give the sender's error; anything else is the decoded value.
 */
function readReply(msg: Msg, codec: Codec): unknown {
  // The common case, an agent's success reply, is recognised by its exact header bytes.
  const raw = rawHeaderBlock(msg);
  if (raw === undefined || (raw !== null && sameBytes(raw, MSGPACK_REPLY_HEADER))) {
    return decodeReply(msg, codec);
  }
  const h = msg.headers;
  if (h === undefined) return decodeReply(msg, codec);
  if (msg.data.length === 0 && h.code === 503) {
    throw new MeshError("UNAVAILABLE", "no instance is listening (no responders)", {
      data: { noResponders: true },
    });
  }
  let body: unknown;
  try {
    body = codec.decode(msg.data);
  } catch {
    body = undefined;
  }
  const err = errorFromReply(h, body);
  if (err !== undefined) throw err;
  return decodeReply(msg, codec);
}

/** Runs one logical call: attempts, retries, deadline, cancellation. */
export async function call(
  scope: CallScope,
  service: string,
  method: string,
  payload: unknown,
  options: RequestOptions = {},
): Promise<unknown> {
  const defaults = scope.options;
  const subject = scope.subjects.service(service, method);
  const codec = codecs[options.codec === undefined ? defaults.codec : checkCodec(options.codec)];
  const timeout =
    options.timeout === undefined
      ? defaults.timeoutMs
      : checkInt(options.timeout, "timeout", 1, 3_600_000);
  const retries =
    options.retries === undefined ? defaults.retries : checkInt(options.retries, "retries", 0, 100);
  const { signal, idempotent = false } = options;
  signal?.throwIfAborted();

  const data = codec.encode(payload);
  const maxPayload = scope.nc.info?.max_payload ?? 0;
  const tooLarge = checkPayloadSize(data.length, maxPayload);
  if (tooLarge !== undefined) throw tooLarge;

  const start = Date.now();
  const deadline =
    options.deadline === undefined ? start + timeout : Math.min(options.deadline, start + timeout);
  const attemptTimeout = idempotent
    ? (options.attemptTimeout ?? Math.max(1, Math.ceil((deadline - start) / (retries + 1))))
    : Number.POSITIVE_INFINITY;
  const user = options.headers;
  const traceparent = childTraceparent(user?.[Header.TraceParent]);
  const userLines = renderUserHeaders(user);
  const idempotencyKey = idempotent ? (options.idempotencyKey ?? nuid.next()) : undefined;

  for (let attempt = 1; ; attempt++) {
    if (!scope.link.up) await scope.link.waitUp(deadline, signal);
    const attemptDeadline = Math.min(deadline, Date.now() + attemptTimeout);
    const h = requestHeaders(
      codec,
      attemptDeadline,
      attempt,
      traceparent,
      idempotencyKey,
      undefined,
      userLines,
    );
    let err: MeshError;
    try {
      const msg = await scope.mux.request(subject, data, h, attemptDeadline, signal);
      return readReply(msg, codec);
    } catch (thrown) {
      if (signal?.aborted) throw signal.reason;
      if (thrown instanceof InvalidArgumentError) {
        throw new MeshError(
          "PAYLOAD_TOO_LARGE",
          "payload and headers exceed the server's max_payload",
          { cause: thrown },
        );
      }
      err = toMeshError(thrown);
    }
    const remaining = deadline - Date.now();
    const retryable =
      err.retryable || (idempotent && err.code === "DEADLINE_EXCEEDED" && remaining > 0);
    if (!retryable || attempt > retries || remaining <= 0) throw err;
    if (err.code !== "DEADLINE_EXCEEDED") {
      const pause = backoffMs(attempt);
      if (pause >= remaining) throw err;
      await sleep(pause);
      signal?.throwIfAborted();
    }
  }
}
