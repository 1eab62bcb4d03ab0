import type { JetStreamClient, JetStreamManager, MsgRequest, StoredMsg } from "@nats-io/jetstream";
import type { MsgHdrs } from "@nats-io/nats-core";
import { MeshError } from "../errors.js";
import { assertName } from "../names.js";
import { DEFAULT_PREFIX, subjects } from "../subjects.js";
import { type DeadLetter, readDeadLetter, replayHeaders } from "./dead-letter.js";
import { assertEventName } from "./names.js";
import { deadLetterStream } from "./streams.js";

/** A dead letter as stored: checked fields, or only its place when it does not check out. */
export type StoredDeadLetter =
  | (DeadLetter & {
      valid: true;
      /** When the dead letter was stored. */
      time: Date;
      headers: MsgHdrs | undefined;
      data: Uint8Array;
    })
  | { valid: false; dlqSeq: number; dlqSubject: string; time: Date };

/** Options of {@link listDeadLetters}. */
export interface ListDeadLettersOptions {
  /** Only this service's dead letters. */
  service?: string;
  /** First sequence in `<P>_dlq` to look at. @default 1 */
  fromSeq?: number;
  /** Most dead letters returned. @default 100 */
  limit?: number;
}

function toStored(m: StoredMsg, prefix: string): StoredDeadLetter {
  const letter = readDeadLetter(m.seq, m.subject, m.header, prefix);
  if (letter === undefined)
    return { valid: false, dlqSeq: m.seq, dlqSubject: m.subject, time: m.time };
  return { ...letter, valid: true, time: m.time, headers: m.header, data: m.data };
}

/**
 * Lists dead letters in stream order, each fetched by the server's "next by subject" lookup, so
 * a filter by service skips the others without reading them. Letters that do not check out
 * (foreign subjects or headers) are listed as invalid, never replayed.
 */
export async function listDeadLetters(
  jsm: JetStreamManager,
  prefix: string = DEFAULT_PREFIX,
  options: ListDeadLettersOptions = {},
): Promise<StoredDeadLetter[]> {
  const { service, fromSeq = 1, limit = 100 } = options;
  const filter = subjects(prefix).deadLetters(service);
  const stream = deadLetterStream(prefix);
  const out: StoredDeadLetter[] = [];
  for (let seq = Math.max(1, fromSeq); out.length < limit; ) {
    // nats.js types `next_by_subj` for direct gets only; the server's MSG.GET takes it too (2.9+).
    const query = { seq, next_by_subj: filter } as unknown as MsgRequest;
    const m = await jsm.streams.getMessage(stream, query);
    if (m === null) break;
    out.push(toStored(m, prefix));
    seq = m.seq + 1;
  }
  return out;
}

/** The dead letter at `dlqSeq`, or `undefined` when there is none. */
export async function getDeadLetter(
  jsm: JetStreamManager,
  prefix: string,
  dlqSeq: number,
): Promise<StoredDeadLetter | undefined> {
  const m = await jsm.streams.getMessage(deadLetterStream(prefix), { seq: dlqSeq });
  return m === null ? undefined : toStored(m, prefix);
}

/** What a replay did. */
export interface ReplayResult {
  dlqSeq: number;
  /** The replayed event's sequence in `<P>_events`. */
  seq: number;
  /** The id it was published with. */
  id: string;
}

/**
 * Replays a dead letter: publishes the original event again on its `P.evt.<event>` subject
 * (stored and acknowledged by `<P>_events`), marked for the service that gave up on it, then
 * deletes it from `<P>_dlq`. A crash in between leaves the letter in place: replayed twice at
 * worst, never lost. `NOT_FOUND` when there is no such letter, `BAD_REQUEST` when it does not
 * check out (it could publish outside the mesh).
 */
export async function replayDeadLetter(
  js: JetStreamClient,
  jsm: JetStreamManager,
  prefix: string,
  dlqSeq: number,
  authorization?: string,
): Promise<ReplayResult> {
  const letter = await getDeadLetter(jsm, prefix, dlqSeq);
  if (letter === undefined) {
    throw new MeshError("NOT_FOUND", `no dead letter at sequence ${dlqSeq}`);
  }
  if (!letter.valid) {
    throw new MeshError(
      "BAD_REQUEST",
      `the dead letter at ${dlqSeq} (${letter.dlqSubject}) is not one natsmesh wrote; not replaying it`,
    );
  }
  if (!letter.replayable) {
    throw new MeshError(
      "BAD_REQUEST",
      `the dead letter at ${dlqSeq} came from ${letter.subject}, which is not an event subject; it cannot be replayed`,
    );
  }
  const headers = replayHeaders(letter, letter.headers, authorization);
  const ack = await js.publish(letter.subject, letter.data, { headers });
  await jsm.streams.deleteMessage(deadLetterStream(prefix), dlqSeq, false);
  return { dlqSeq, seq: ack.seq, id: headers.get("Nats-Msg-Id") };
}

/** Options of {@link purgeDeadLetters}. */
export interface PurgeDeadLettersOptions {
  service?: string;
  /** Only this event's dead letters; needs `service`. */
  event?: string;
}

/** Removes dead letters (all, one service's, or one event's of a service); returns how many. */
export async function purgeDeadLetters(
  jsm: JetStreamManager,
  prefix: string,
  options: PurgeDeadLettersOptions = {},
): Promise<number> {
  const s = subjects(prefix);
  let filter = s.deadLetters(options.service);
  if (options.event !== undefined) {
    if (options.service === undefined) throw new TypeError("purging one event needs a service");
    assertName(options.service, "service");
    assertEventName(options.event);
    filter = s.deadLetter(options.service, options.event);
  }
  const r = await jsm.streams.purge(deadLetterStream(prefix), { filter });
  return r.purged;
}
