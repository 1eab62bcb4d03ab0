import type { Msg } from "@nats-io/nats-core";
import { Header } from "@natsmesh/protocol";
import { HeaderNames, rawHeaderBlock } from "@natsmesh/protocol/internal";

/** The headers of a request the dispatcher reads, as found (unparsed). */
export interface RequestFields {
  contentType: string | undefined;
  deadline: string | undefined;
  attempt: string | undefined;
  authorization: string | undefined;
  tokenRef: string | undefined;
}

const NO_FIELDS: RequestFields = Object.freeze({
  contentType: undefined,
  deadline: undefined,
  attempt: undefined,
  authorization: undefined,
  tokenRef: undefined,
});

const WITHOUT_AUTH = new HeaderNames([Header.ContentType, Header.Deadline, Header.Attempt]);
const WITH_AUTH = new HeaderNames([
  Header.ContentType,
  Header.Deadline,
  Header.Attempt,
  Header.Authorization,
  Header.TokenRef,
]);

/**
 * The request headers the dispatcher needs, read from the raw header block's bytes without
 * building nats.js' header map; the token headers only when tokens are checked.
 */
export function requestFields(msg: Msg, withAuth: boolean): RequestFields {
  const raw = rawHeaderBlock(msg);
  if (raw === undefined) return NO_FIELDS;
  if (raw === null) {
    const h = msg.headers;
    return {
      contentType: h?.get(Header.ContentType) || undefined,
      deadline: h?.get(Header.Deadline) || undefined,
      attempt: h?.get(Header.Attempt) || undefined,
      authorization: withAuth ? h?.get(Header.Authorization) || undefined : undefined,
      tokenRef: withAuth ? h?.get(Header.TokenRef) || undefined : undefined,
    };
  }
  const [contentType, deadline, attempt, authorization, tokenRef] = (
    withAuth ? WITH_AUTH : WITHOUT_AUTH
  ).read(raw);
  return { contentType, deadline, attempt, authorization, tokenRef };
}
