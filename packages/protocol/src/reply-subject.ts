import type { NatsConnection } from "@nats-io/nats-core";
import { isValidName } from "./names.js";

/** The inbox prefix of NATS clients (`_INBOX.<nuid>…`), and the SDK's default. */
export const DEFAULT_INBOX_PREFIX = "_INBOX";

/** Longest reply subject an agent answers; inboxes are far shorter (`_INBOX.` + 22 + a token). */
export const MAX_REPLY_SUBJECT_LENGTH = 256;

/**
 * Throws `TypeError` unless `inboxPrefix` can hold requesters' inboxes in the mesh with
 * `meshPrefix`: dot-separated tokens of `[A-Za-z0-9_-]` (so never `$…`, never a wildcard), and
 * neither under the mesh prefix nor above it, so a reply can never land on a mesh subject.
 */
export function assertInboxPrefix(inboxPrefix: unknown, meshPrefix: string): string {
  if (
    typeof inboxPrefix !== "string" ||
    inboxPrefix.length > 128 ||
    !inboxPrefix.split(".").every(isValidName)
  ) {
    throw new TypeError(
      `an inbox prefix must be dot-separated tokens of [A-Za-z0-9_-] (e.g. "_INBOX"), got ${JSON.stringify(String(inboxPrefix)).slice(0, 90)}`,
    );
  }
  if (
    inboxPrefix === meshPrefix ||
    inboxPrefix.startsWith(`${meshPrefix}.`) ||
    meshPrefix.startsWith(`${inboxPrefix}.`)
  ) {
    throw new TypeError(
      `inbox prefix ${inboxPrefix} overlaps the mesh prefix ${meshPrefix}: replies would reach mesh subjects`,
    );
  }
  return inboxPrefix;
}

/**
 * Decides which reply subjects an agent answers: only those a requester could own, under one of
 * the inbox prefixes, as literal subjects (no wildcard, no empty token, no control character) of
 * at most {@link MAX_REPLY_SUBJECT_LENGTH} characters. Everything else, `$JS.…`, `$KV.…` and mesh
 * subjects included, is refused: an agent must never publish where a caller tells it to.
 */
export class ReplySubjectRule {
  readonly #prefixes: readonly Uint8Array[];

  /** `inboxPrefixes` must have passed {@link assertInboxPrefix}. */
  constructor(inboxPrefixes: readonly string[]) {
    this.#prefixes = inboxPrefixes.map((p) => Buffer.from(`${p}.`, "latin1"));
  }

  /** True when `reply` is an inbox-shaped subject under one of the prefixes. */
  allows(reply: string): boolean {
    // Refused before encoding; UTF-8 makes no string shorter, and non-ASCII is refused anyway.
    return reply.length <= MAX_REPLY_SUBJECT_LENGTH && this.allowsBytes(Buffer.from(reply, "utf8"));
  }

  /**
   * {@link ReplySubjectRule.allows} for the bytes of a received reply subject, so a request's
   * reply subject is checked (and answered) without being decoded into a string.
   */
  allowsBytes(reply: Uint8Array): boolean {
    const n = reply.length;
    if (n > MAX_REPLY_SUBJECT_LENGTH) return false;
    const prefixes = this.#prefixes;
    for (let p = 0; p < prefixes.length; p++) {
      const prefix = prefixes[p]!;
      const m = prefix.length;
      let i = 0;
      while (i < m && i < n && reply[i] === prefix[i]) i++;
      if (i === m) return literalTokens(reply, m);
    }
    return false;
  }
}

/** What each byte may be in a reply subject's tokens: 0 refused, 1 part of a token, 2 a dot. */
const BYTE_CLASS = new Uint8Array(256);
for (let c = 0x21; c < 0x7f; c++) BYTE_CLASS[c] = c === 0x2e ? 2 : c === 0x2a || c === 0x3e ? 0 : 1;

/**
 * True when `s` from `from` on is one or more non-empty tokens of printable ASCII without
 * wildcards (space, control characters, `*`, `>` and every byte from 0x7f refused).
 */
function literalTokens(s: Uint8Array, from: number): boolean {
  const n = s.length;
  let tokenStart = from;
  for (let i = from; i < n; i++) {
    const kind = BYTE_CLASS[s[i]!];
    if (kind === 1) continue;
    if (kind === 0 || i === tokenStart) return false;
    tokenStart = i + 1;
  }
  return tokenStart < n;
}

/** The inbox prefix a connection was opened with; replies must use it to pass permissions. */
export function inboxPrefixOf(nc: NatsConnection): string {
  return (
    (nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix ?? DEFAULT_INBOX_PREFIX
  );
}
