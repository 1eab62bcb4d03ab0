import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import { isValidName } from "../names.js";
import { DEFAULT_PREFIX, parseDeadLetterSubject, parseEventPatternSubject } from "../subjects.js";
import { INVALID_EVENT } from "./dead-letter.js";
import { eventMatches, patternId } from "./names.js";
import { deadLetterStream, eventStream } from "./streams.js";

/** The state of one consumer group: a service's durable consumer of one pattern. */
export interface EventGroup {
  service: string;
  pattern: string;
  /** The durable consumer's name, `<service>__<pattern-id>`. */
  consumer: string;
  /** Events stored and not yet delivered to the group. */
  pending: number;
  /** Events delivered and not yet acknowledged: being handled, or waiting for a retry. */
  inFlight: number;
  /** Events delivered more than once and not yet acknowledged. */
  redelivered: number;
  /** Pull requests of the group's instances waiting at the server. */
  waiting: number;
  /** One event at a time across the group (`max_ack_pending` 1). */
  ordered: boolean;
  /**
   * Dead letters kept that this group gave up on: those of its service for events that its
   * pattern matches and no other group of the service's does (see {@link readEventsOverview}).
   */
  deadLetters: number;
}

/** Size and bounds of one stream. */
export interface StreamSummary {
  name: string;
  messages: number;
  bytes: number;
  firstSeq: number;
  lastSeq: number;
  replicas: number;
  maxAgeMs: number;
  maxBytes: number;
}

/** What `natsmesh events ls` and the registry's metrics show. */
export interface EventsOverview {
  /** `undefined` when the stream does not exist (nothing emitted or subscribed yet). */
  events: StreamSummary | undefined;
  deadLetterStream: StreamSummary | undefined;
  groups: EventGroup[];
  /**
   * Dead letters currently kept, by service: every one, including those no group is
   * credited with.
   */
  deadLetters: Record<string, number>;
}

/** Most consumer groups read. */
const MAX_GROUPS = 1000;

/**
 * Reads the event streams, the consumer groups on `<P>_events` (only consumers named and filtered
 * as natsmesh makes them) and the dead letters kept per service and per group. Missing streams
 * are reported as `undefined`; other JetStream errors reject.
 *
 * A dead letter names its service and event (its subject, `P.dlq.<service>.<event>`, as do its
 * `Mesh-Dlq-Service` and `Mesh-Dlq-Subject` headers), not the consumer that gave up; it is
 * credited to a group when exactly one of the service's groups could have: the one whose pattern
 * matches the event, or for `_invalid` letters the service's only group. Letters of services whose
 * patterns overlap on the event, or whose group is gone, count for the service only.
 */
export async function readEventsOverview(
  jsm: JetStreamManager,
  prefix: string = DEFAULT_PREFIX,
): Promise<EventsOverview> {
  const events = await summary(jsm, eventStream(prefix), false);
  const dlq = await summary(jsm, deadLetterStream(prefix), true);
  const groups: EventGroup[] = [];
  if (events !== undefined) {
    for await (const c of jsm.consumers.list(events.summary.name)) {
      if (groups.length >= MAX_GROUPS) break;
      const pattern = parseEventPatternSubject(c.config.filter_subject ?? "", prefix);
      if (pattern === undefined) continue;
      const suffix = `__${patternId(pattern)}`;
      const service = c.name.endsWith(suffix) ? c.name.slice(0, -suffix.length) : "";
      if (!isValidName(service)) continue;
      groups.push({
        service,
        pattern,
        consumer: c.name,
        pending: c.num_pending,
        inFlight: c.num_ack_pending,
        redelivered: c.num_redelivered,
        waiting: c.num_waiting,
        ordered: c.config.max_ack_pending === 1,
        deadLetters: 0,
      });
    }
  }
  groups.sort((a, b) => (a.consumer < b.consumer ? -1 : a.consumer > b.consumer ? 1 : 0));
  const byService = new Map<string, EventGroup[]>();
  for (const g of groups) {
    const list = byService.get(g.service);
    if (list === undefined) byService.set(g.service, [g]);
    else list.push(g);
  }
  const deadLetters: Record<string, number> = {};
  for (const [subject, count] of Object.entries(dlq?.subjects ?? {})) {
    const where = parseDeadLetterSubject(subject, prefix);
    if (where === undefined) continue;
    deadLetters[where.service] = (deadLetters[where.service] ?? 0) + count;
    const own = byService.get(where.service) ?? [];
    const candidates =
      where.event === INVALID_EVENT ? own : own.filter((g) => eventMatches(g.pattern, where.event));
    if (candidates.length === 1) candidates[0]!.deadLetters += count;
  }
  return {
    events: events?.summary,
    deadLetterStream: dlq?.summary,
    groups,
    deadLetters,
  };
}

async function summary(
  jsm: JetStreamManager,
  name: string,
  withSubjects: boolean,
): Promise<{ summary: StreamSummary; subjects: Record<string, number> } | undefined> {
  try {
    const info = await jsm.streams.info(name, withSubjects ? { subjects_filter: ">" } : undefined);
    return {
      summary: {
        name,
        messages: info.state.messages,
        bytes: info.state.bytes,
        firstSeq: info.state.first_seq,
        lastSeq: info.state.last_seq,
        replicas: info.config.num_replicas,
        maxAgeMs: Math.round(info.config.max_age / 1_000_000),
        maxBytes: info.config.max_bytes,
      },
      subjects: info.state.subjects ?? {},
    };
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) {
      return undefined;
    }
    throw err;
  }
}
