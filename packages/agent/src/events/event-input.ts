import {
  type Codec,
  codecForContentType,
  Header,
  isValidName,
  MeshError,
  parseEventSubject,
} from "@natsmesh/protocol";
import type { HeaderReader } from "./event-headers.js";

const CONTENT_TYPE = Header.ContentType.toLowerCase();
const MSG_ID = Header.MsgId.toLowerCase();
const AUTHORIZATION = Header.Authorization.toLowerCase();
const REPLAY = Header.ReplayService.toLowerCase();

/** An event message read and checked, before its token and payload are. */
export interface EventInput {
  name: string;
  /** `Nats-Msg-Id`, or the stream sequence / a receipt number when the emitter sent none. */
  id: string;
  codec: Codec;
  authorization: string | undefined;
  /** The service a replayed event is meant for (`Mesh-Replay-Service`), if any. */
  replayFor: string | undefined;
}

const ID = /^[\x21-\x7e]{1,256}$/;

/**
 * Reads an event's subject and headers: the name, id, codec, token and replay target. Gives the
 * `BAD_REQUEST` or `PAYLOAD_TOO_LARGE` error to dead-letter or drop with instead when the
 * message is not a usable event. Never throws; reads no payload byte.
 */
export function readEventInput(
  subject: string,
  header: HeaderReader,
  size: number,
  prefix: string,
  maxBytes: number,
  fallbackId: string,
): EventInput | MeshError {
  const name = parseEventSubject(subject, prefix);
  if (name === undefined) {
    return new MeshError("BAD_REQUEST", `${subject} is not a valid event subject`);
  }
  if (size > maxBytes) {
    return new MeshError(
      "PAYLOAD_TOO_LARGE",
      `event payload of ${size} bytes exceeds the agent's limit of ${maxBytes} bytes`,
    );
  }
  const codec = codecForContentType(header(CONTENT_TYPE));
  if (codec === undefined) {
    return new MeshError(
      "BAD_REQUEST",
      "unsupported Content-Type: use application/json or application/msgpack",
    );
  }
  const id = header(MSG_ID) ?? "";
  const replay = header(REPLAY) ?? "";
  if (replay !== "" && !isValidName(replay)) {
    return new MeshError("BAD_REQUEST", `${Header.ReplayService} must be a service name`);
  }
  return {
    name,
    id: ID.test(id) ? id : fallbackId,
    codec,
    authorization: header(AUTHORIZATION) || undefined,
    replayFor: replay === "" ? undefined : replay,
  };
}
