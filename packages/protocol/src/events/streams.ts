import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import { withDefaults } from "../defaults.js";
import { MeshError } from "../errors.js";
import { checkInt } from "../integers.js";
import { bucketBase } from "../presence.js";
import { DEFAULT_PREFIX, subjects } from "../subjects.js";

/** Name of the events stream: `<P>_events`. */
export function eventStream(prefix: string = DEFAULT_PREFIX): string {
  return `${bucketBase(prefix)}_events`;
}

/** Name of the dead-letter stream: `<P>_dlq`. */
export function deadLetterStream(prefix: string = DEFAULT_PREFIX): string {
  return `${bucketBase(prefix)}_dlq`;
}

/** Limits of the two event streams when natsmesh creates them. */
export interface EventStreamOptions {
  /**
   * Replicas (1–5); 3 on a 3-node cluster survives the loss of a node.
   * @default 1
   */
  replicas?: number;
  /**
   * Age after which events are removed, ms.
   * @default 604800000 (7 days)
   */
  maxAgeMs?: number;
  /**
   * Most bytes the events stream keeps; the oldest go first.
   * @default 1073741824 (1 GiB)
   */
  maxBytes?: number;
  /**
   * Age after which dead letters are removed, ms.
   * @default 2592000000 (30 days)
   */
  deadLetterMaxAgeMs?: number;
  /**
   * Most bytes the dead-letter stream keeps; the oldest go first.
   * @default 268435456 (256 MiB)
   */
  deadLetterMaxBytes?: number;
}

export const EVENT_STREAM_DEFAULTS = {
  replicas: 1,
  maxAgeMs: 7 * 24 * 3_600_000,
  maxBytes: 1024 ** 3,
  deadLetterMaxAgeMs: 30 * 24 * 3_600_000,
  deadLetterMaxBytes: 256 * 1024 ** 2,
} as const satisfies Required<EventStreamOptions>;

/** Window within which JetStream stores an event id (`Nats-Msg-Id`) once. */
export const DUPLICATE_WINDOW_MS = 120_000;

/** Resolves and checks {@link EventStreamOptions}; throws `TypeError` on a bad value. */
export function resolveEventStreamOptions(
  options: EventStreamOptions = {},
): Required<EventStreamOptions> {
  if (options === null || typeof options !== "object") {
    throw new TypeError("streams must be an object");
  }
  const o = withDefaults(EVENT_STREAM_DEFAULTS, options);
  const day = 24 * 3_600_000;
  return {
    replicas: checkInt(o.replicas, "streams.replicas", 1, 5),
    maxAgeMs: checkInt(o.maxAgeMs, "streams.maxAgeMs", 1000, 3650 * day),
    maxBytes: checkInt(o.maxBytes, "streams.maxBytes", 1024, Number.MAX_SAFE_INTEGER),
    deadLetterMaxAgeMs: checkInt(
      o.deadLetterMaxAgeMs,
      "streams.deadLetterMaxAgeMs",
      1000,
      3650 * day,
    ),
    deadLetterMaxBytes: checkInt(
      o.deadLetterMaxBytes,
      "streams.deadLetterMaxBytes",
      1024,
      Number.MAX_SAFE_INTEGER,
    ),
  };
}

/** What {@link ensureEventStreams} found or did. */
export interface EnsuredStream {
  name: string;
  created: boolean;
  /** Settings of an existing stream that differ from natsmesh's; it is used as it is. */
  differences: string[];
}

const NANOS_PER_MS = 1_000_000;

function wanted(
  name: string,
  subject: string,
  maxAgeMs: number,
  maxBytes: number,
  replicas: number,
  description: string,
): Partial<StreamConfig> {
  return {
    name,
    description,
    subjects: [subject],
    storage: "file" as StreamConfig["storage"],
    retention: "limits" as StreamConfig["retention"],
    discard: "old" as StreamConfig["discard"],
    max_age: maxAgeMs * NANOS_PER_MS,
    max_bytes: maxBytes,
    duplicate_window: DUPLICATE_WINDOW_MS * NANOS_PER_MS,
    num_replicas: replicas,
  };
}

/** The settings natsmesh cares about that an existing stream has otherwise. */
function differences(info: StreamInfo, want: Partial<StreamConfig>): string[] {
  const c = info.config;
  const out: string[] = [];
  const subjects = c.subjects ?? [];
  if (!subjects.includes(want.subjects![0]!)) {
    out.push(`subjects ${JSON.stringify(subjects)} do not include ${want.subjects![0]}`);
  }
  for (const key of [
    "storage",
    "retention",
    "max_age",
    "max_bytes",
    "duplicate_window",
    "num_replicas",
  ] as const) {
    if (c[key] !== want[key]) out.push(`${key} is ${String(c[key])}, not ${String(want[key])}`);
  }
  return out;
}

async function ensure(jsm: JetStreamManager, want: Partial<StreamConfig>): Promise<EnsuredStream> {
  const name = want.name!;
  for (let attempt = 1; ; attempt++) {
    try {
      const info = await jsm.streams.info(name);
      return { name, created: false, differences: differences(info, want) };
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    try {
      await jsm.streams.add({ ...want, name });
      return { name, created: true, differences: [] };
    } catch (err) {
      // Two parts starting together race to create it; the loser finds it on the next look.
      if (attempt >= 2) throw err;
    }
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}

/**
 * Creates `<P>_events` (subjects `P.evt.>`) and `<P>_dlq` (subjects `P.dlq.>`) when missing, with
 * file storage, limits by age and size, and a duplicate window of 2 minutes. An existing stream
 * is used as it is, never changed or recreated; its differing settings are returned so the
 * caller can warn. JetStream off, no quorum or no permission: `UNAVAILABLE`.
 */
export async function ensureEventStreams(
  jsm: JetStreamManager,
  prefix: string,
  options: EventStreamOptions = {},
): Promise<EnsuredStream[]> {
  const o = resolveEventStreamOptions(options);
  const s = subjects(prefix);
  try {
    return await Promise.all([
      ensure(
        jsm,
        wanted(
          eventStream(prefix),
          s.events(),
          o.maxAgeMs,
          o.maxBytes,
          o.replicas,
          "natsmesh events",
        ),
      ),
      ensure(
        jsm,
        wanted(
          deadLetterStream(prefix),
          s.deadLetters(),
          o.deadLetterMaxAgeMs,
          o.deadLetterMaxBytes,
          o.replicas,
          "natsmesh dead letters",
        ),
      ),
    ]);
  } catch (err) {
    throw new MeshError(
      "UNAVAILABLE",
      "the event streams could not be opened or created (is JetStream enabled?)",
      { cause: err },
    );
  }
}
