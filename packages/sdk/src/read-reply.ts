import type { Msg } from "@nats-io/nats-core";
import { type Codec, errorFromReply, MeshError } from "@natsmesh/protocol";
import { MSGPACK_REPLY_HEADER, rawHeaderBlock, sameBytes } from "@natsmesh/protocol/internal";

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
export function readReply(msg: Msg, codec: Codec): unknown {
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
  // Decoded once: an error reply's body is read for its data, a success's is the value.
  let body: unknown;
  let undecodable: unknown;
  try {
    body = codec.decode(msg.data);
  } catch (e) {
    undecodable = e;
  }
  const err = errorFromReply(h, body);
  if (err !== undefined) throw err;
  if (undecodable !== undefined) {
    throw new MeshError("INTERNAL", "the reply did not decode", { cause: undecodable });
  }
  return body;
}
