import type { Msg } from "@nats-io/nats-core";
import { MeshError } from "@natsmesh/protocol";

/** What the server answered an event publish with. */
export type PubAckResult =
  | { kind: "stored"; stream: string; seq: number; duplicate: boolean }
  /** No stream captures the subject (or JetStream is off): nobody answered. */
  | { kind: "no-stream" }
  /** The stream answered with an error; `retry` when trying again may work (no quorum yet). */
  | { kind: "error"; error: MeshError; retry: boolean };

interface ApiError {
  code?: unknown;
  err_code?: unknown;
  description?: unknown;
}

/**
 * Reads a JetStream publish acknowledgement: `{"stream","seq","duplicate"?}`, or
 * `{"error":{…}}`, or a `503` status with no body when no stream listens. Anything else (the
 * reply is from the server, but it is still parsed defensively) is an `UNAVAILABLE` error.
 */
export function readPubAck(msg: Msg): PubAckResult {
  if (msg.data.length === 0 && msg.headers?.code === 503) return { kind: "no-stream" };
  let body: { stream?: unknown; seq?: unknown; duplicate?: unknown; error?: ApiError };
  try {
    body = JSON.parse(new TextDecoder().decode(msg.data));
  } catch (err) {
    return { kind: "error", error: unreadable(err), retry: false };
  }
  if (body !== null && typeof body === "object" && body.error !== undefined) {
    const status = typeof body.error.code === "number" ? body.error.code : 500;
    const text = typeof body.error.description === "string" ? body.error.description : "";
    const retry = status === 503;
    const code = status === 503 ? "UNAVAILABLE" : status === 400 ? "BAD_REQUEST" : "UNAVAILABLE";
    return {
      kind: "error",
      retry,
      error: new MeshError(code, `the events stream refused the event: ${text || status}`, {
        data: { status, errCode: body.error.err_code },
      }),
    };
  }
  if (
    body === null ||
    typeof body !== "object" ||
    typeof body.stream !== "string" ||
    typeof body.seq !== "number"
  ) {
    return { kind: "error", error: unreadable(undefined), retry: false };
  }
  return { kind: "stored", stream: body.stream, seq: body.seq, duplicate: body.duplicate === true };
}

function unreadable(cause: unknown): MeshError {
  return new MeshError("UNAVAILABLE", "the events stream's acknowledgement was not readable", {
    cause,
  });
}
