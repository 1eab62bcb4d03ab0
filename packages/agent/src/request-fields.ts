import type { Msg } from "@nats-io/nats-core";
import { Header } from "@natsmesh/protocol";
import { HeaderBlock, rawHeaderBlock } from "@natsmesh/protocol/internal";

const CONTENT_TYPE = Header.ContentType.toLowerCase();
const DEADLINE = Header.Deadline.toLowerCase();
const ATTEMPT = Header.Attempt.toLowerCase();

const AUTHORIZATION = Header.Authorization.toLowerCase();

/** The headers of a request the dispatcher reads, as found (unparsed). */
export interface RequestFields {
  block: HeaderBlock | undefined;
  contentType: string | undefined;
  deadline: string | undefined;
  attempt: string | undefined;
  authorization: string | undefined;
}

const NO_FIELDS: RequestFields = {
  block: undefined,
  contentType: undefined,
  deadline: undefined,
  attempt: undefined,
  authorization: undefined,
};

/** The request headers the dispatcher needs, read without building nats.js' header map. */
export function requestFields(msg: Msg, withAuth: boolean): RequestFields {
  const raw = rawHeaderBlock(msg);
  if (raw === undefined) return NO_FIELDS;
  if (raw === null) {
    const h = msg.headers;
    return {
      block: undefined,
      contentType: h?.get(Header.ContentType) || undefined,
      deadline: h?.get(Header.Deadline) || undefined,
      attempt: h?.get(Header.Attempt) || undefined,
      authorization: withAuth ? h?.get(Header.Authorization) || undefined : undefined,
    };
  }
  const block = new HeaderBlock(raw);
  return {
    block,
    contentType: block.get(CONTENT_TYPE),
    deadline: block.get(DEADLINE),
    attempt: block.get(ATTEMPT),
    // Only looked for when tokens are checked: a scan of the block per call otherwise wasted.
    authorization: withAuth ? block.get(AUTHORIZATION) : undefined,
  };
}
