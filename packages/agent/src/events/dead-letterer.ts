import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";
import type { MsgHdrs, NatsConnection } from "@nats-io/nats-core";
import { Header, type MeshError, parseEventSubject, type Subjects } from "@natsmesh/protocol";
import { deadLetterHeaders, headerText, INVALID_EVENT } from "@natsmesh/protocol/internal";

/** How long the dead-letter stream may take to acknowledge. */
const PUBLISH_TIMEOUT_MS = 5000;

/**
 * Moves events a service's consumer gives up on to `<P>_dlq`. The dead letter is stored (and
 * acknowledged by the stream) before the event is terminated, so a crash in between leaves the
 * event to be delivered again, and dead-lettered again: a duplicate dead letter at worst (which
 * the stream drops within its duplicate window), never a lost event.
 */
export class DeadLetterer {
  readonly #js: JetStreamClient;
  readonly #nc: NatsConnection;
  readonly #subjects: Subjects;
  readonly #service: string;

  constructor(nc: NatsConnection, js: JetStreamClient, subjects: Subjects, service: string) {
    this.#nc = nc;
    this.#js = js;
    this.#subjects = subjects;
    this.#service = service;
  }

  /**
   * Stores the dead letter, then terminates the event. Rejects (leaving the event unterminated,
   * so the caller can ask for a redelivery) when the dead-letter stream does not acknowledge.
   */
  async deadLetter(m: JsMsg, err: MeshError, deliveries: number): Promise<void> {
    const name = parseEventSubject(m.subject, this.#subjects.prefix) ?? INVALID_EVENT;
    const headers = deadLetterHeaders(m.headers, {
      code: err.code,
      message: err.message,
      service: this.#service,
      consumer: m.info.consumer,
      deliveries,
      subject: m.subject,
      seq: m.info.streamSequence,
      eventId: m.headers?.get(Header.MsgId) || undefined,
    });
    let data = m.data;
    // The added headers can push an event that was near the limit over it; the letter then goes
    // without its payload (the event itself stays in <P>_events at Mesh-Dlq-Seq until it ages out).
    const max = this.#nc.info?.max_payload ?? 1024 * 1024;
    if (data.length + headerSize(headers) > max) {
      data = new Uint8Array(0);
      const text = `${headers.get(Header.ErrorMessage)} (payload dropped: too large to dead-letter)`;
      headers.set(Header.ErrorMessage, headerText(text));
    }
    await this.#js.publish(this.#subjects.deadLetter(this.#service, name), data, {
      headers,
      timeout: PUBLISH_TIMEOUT_MS,
    });
    // No reason text: `+TERM <reason>` is newer than the servers natsmesh supports.
    m.term();
  }
}

/** Bytes of a header block on the wire: `NATS/1.0\r\n`, `name: value\r\n` lines, `\r\n`. */
function headerSize(h: MsgHdrs): number {
  let size = 12;
  for (const [name, values] of h) {
    for (const value of values) size += Buffer.byteLength(name) + Buffer.byteLength(value) + 4;
  }
  return size;
}
