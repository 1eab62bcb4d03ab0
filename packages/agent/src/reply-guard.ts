import type { Msg } from "@nats-io/nats-core";
import { type ReplySubjectRule, rawReply, type ThrottledLog } from "@natsmesh/protocol/internal";

/** Longest part of a peer-chosen subject written to the log. */
const LOGGED_SUBJECT = 128;

/**
 * The one gate every answer of an agent passes (calls and discovery): a message is answered only
 * when its reply subject is one a requester could own. The rest is counted and dropped, so a
 * caller can never make the agent publish to `$JS.…`, `$KV.…` or mesh subjects for it.
 */
export class ReplyGuard {
  /** Messages dropped because their reply subject is not an inbox. */
  droppedReplies = 0;
  /** Requests without a reply subject: nobody to answer. */
  noReply = 0;
  readonly #rule: ReplySubjectRule;
  readonly #log: ThrottledLog;

  constructor(rule: ReplySubjectRule, log: ThrottledLog) {
    this.#rule = rule;
    this.#log = log;
  }

  /** True when `msg` may be answered; otherwise counts (and rate-limited, logs) why not. */
  admits(msg: Msg): boolean {
    // The bytes nats.js parsed when it exposes them: the reply subject is then never decoded.
    const raw = rawReply(msg);
    const reply = raw === null ? msg.reply : raw;
    if (reply === undefined || reply.length === 0) {
      this.noReply++;
      return false;
    }
    if (typeof reply === "string" ? this.#rule.allows(reply) : this.#rule.allowsBytes(reply)) {
      return true;
    }
    this.droppedReplies++;
    this.#log.warn(
      "reply-subject",
      {
        subject: msg.subject.slice(0, LOGGED_SUBJECT),
        reply: (msg.reply ?? "").slice(0, LOGGED_SUBJECT),
      },
      "dropped a request whose reply subject is not an inbox (set inboxPrefixes for custom inbox prefixes)",
    );
    return false;
  }
}
