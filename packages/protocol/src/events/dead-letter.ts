import { type MsgHdrs, headers as natsHeaders } from "@nats-io/nats-core";
import { isValidErrorCode } from "../error-reply.js";
import { Header, headerText } from "../headers.js";
import { isValidName } from "../names.js";
import { DEFAULT_PREFIX, parseDeadLetterSubject, parseEventSubject } from "../subjects.js";

/**
 * Event name of a dead letter whose event's subject was not a valid event name:
 * `P.dlq.<service>._invalid`.
 */
export const INVALID_EVENT = "_invalid";

/** Why and where a consumer gave up on an event. */
export interface DeadLetterInfo {
  /** The error code (`Mesh-Error`): a contract code or the handler's own. */
  code: string;
  /** The error's message (`Mesh-Error-Message`), made header-safe. */
  message: string;
  /** The service whose consumer gave up (`Mesh-Dlq-Service`). */
  service: string;
  /** That consumer's durable name (`<service>__<pattern-id>`), for the letter's `Nats-Msg-Id`. */
  consumer: string;
  /** Deliveries so far (`Mesh-Dlq-Deliveries`). */
  deliveries: number;
  /** The event's subject (`Mesh-Dlq-Subject`). */
  subject: string;
  /** The event's sequence in `<P>_events` (`Mesh-Dlq-Seq`). */
  seq: number;
  /** The event's id, its `Nats-Msg-Id` (`Mesh-Dlq-Event-Id`), when it had one. */
  eventId: string | undefined;
}

// Headers of the event that must not travel on: server directives (`Nats-Expected-*` would make
// the dead-letter publish fail, `Nats-Msg-Id` would be deduplicated against other services' dead
// letters) and anything a peer could have forged to look like dead-letter or replay metadata.
function carried(name: string): boolean {
  const lower = name.toLowerCase();
  return !(
    lower.startsWith("nats-") ||
    lower.startsWith("mesh-dlq-") ||
    lower.startsWith("mesh-error") ||
    lower === Header.ReplayService.toLowerCase()
  );
}

function copy(from: MsgHdrs | undefined): MsgHdrs {
  const h = natsHeaders();
  if (from === undefined) return h;
  for (const [name, values] of from) {
    if (!carried(name)) continue;
    for (const value of values) h.append(name, value);
  }
  return h;
}

/**
 * The headers of a dead letter: the event's own (less server directives and any forged
 * dead-letter or replay headers), plus `Mesh-Error`, `Mesh-Error-Message` and the `Mesh-Dlq-*`
 * headers. Its `Nats-Msg-Id` is `<consumer>:<seq>`, so a consumer that dead-letters the same
 * delivery twice (it crashed in between) stores it once within the duplicate window, while two
 * groups of one service whose patterns both match the event each keep their letter.
 */
export function deadLetterHeaders(event: MsgHdrs | undefined, info: DeadLetterInfo): MsgHdrs {
  const h = copy(event);
  h.set(Header.MeshError, isValidErrorCode(info.code) ? info.code : "INTERNAL");
  h.set(Header.ErrorMessage, headerText(info.message));
  h.set(Header.DlqService, info.service);
  h.set(Header.DlqDeliveries, String(info.deliveries));
  h.set(Header.DlqSubject, info.subject);
  h.set(Header.DlqSeq, String(info.seq));
  if (info.eventId !== undefined) h.set(Header.DlqEventId, headerText(info.eventId));
  h.set(Header.MsgId, `${info.consumer}:${info.seq}`);
  return h;
}

/** A dead letter read back from `<P>_dlq`, checked. */
export interface DeadLetter {
  /** Its sequence in `<P>_dlq`. */
  dlqSeq: number;
  service: string;
  /** The event name (`_invalid` when the event's subject was not a valid event). */
  event: string;
  /** The event's original subject (`Mesh-Dlq-Subject`), header-safe. */
  subject: string;
  /** True when `subject` is a mesh event subject, `P.evt.<event>`, so the letter may be replayed. */
  replayable: boolean;
  code: string;
  message: string;
  deliveries: number;
  /** The event's sequence in `<P>_events`. */
  seq: number;
  eventId: string | undefined;
}

const DIGITS = /^[0-9]{1,16}$/;

/**
 * Reads and checks a dead letter. The stream's contents are untrusted (anyone allowed to publish
 * on `P.dlq.>` could have put them there): a letter whose own subject or service header is not a
 * mesh one gives `undefined`, and one whose original subject is not `P.evt.<event>` is not
 * `replayable`, since replaying it could publish anywhere.
 */
export function readDeadLetter(
  dlqSeq: number,
  subject: string,
  h: MsgHdrs | undefined,
  prefix: string = DEFAULT_PREFIX,
): DeadLetter | undefined {
  const where = parseDeadLetterSubject(subject, prefix);
  if (where === undefined || h === undefined) return undefined;
  const original = h.get(Header.DlqSubject);
  const event = parseEventSubject(original, prefix);
  const service = h.get(Header.DlqService);
  if (!isValidName(service) || service !== where.service) return undefined;
  const deliveries = h.get(Header.DlqDeliveries);
  const seq = h.get(Header.DlqSeq);
  const code = h.get(Header.MeshError);
  const eventId = h.get(Header.DlqEventId);
  return {
    dlqSeq,
    service,
    event: where.event,
    subject: headerText(original),
    replayable: event !== undefined && event === where.event,
    code: isValidErrorCode(code) ? code : "INTERNAL",
    message: headerText(h.get(Header.ErrorMessage)),
    deliveries: DIGITS.test(deliveries) ? Number(deliveries) : 0,
    seq: DIGITS.test(seq) ? Number(seq) : 0,
    eventId: eventId === "" ? undefined : eventId,
  };
}

/**
 * The headers to replay a dead letter with: the event's own headers back (without the
 * dead-letter ones), `Mesh-Replay-Service` so only the service that gave up handles it again, and
 * a new `Nats-Msg-Id` (`<event id or seq>:replay:<dlq seq>`), since the original id may still be
 * inside the events stream's duplicate window. `authorization` replaces the event's own token
 * when given (an operator replays under their own name).
 */
export function replayHeaders(
  letter: DeadLetter,
  h: MsgHdrs | undefined,
  authorization?: string,
): MsgHdrs {
  const out = copy(h);
  out.set(Header.ReplayService, letter.service);
  out.set(Header.MsgId, `${letter.eventId ?? letter.seq}:replay:${letter.dlqSeq}`);
  if (authorization !== undefined) out.set(Header.Authorization, authorization);
  return out;
}
