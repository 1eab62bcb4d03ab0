import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  ReplayPolicy,
} from "@nats-io/jetstream";
import { patternId, type Subjects } from "@natsmesh/protocol";
import type { ResolvedEventHandler } from "./event-options.js";

/** Unacknowledged events a whole group may hold (in handlers or waiting for a retry). */
const MAX_ACK_PENDING = 1000;
const NANOS_PER_MS = 1_000_000;

/** The durable consumer's name: `<service>__<pattern-id>`. */
export function consumerName(service: string, pattern: string): string {
  return `${service}__${patternId(pattern)}`;
}

/**
 * The consumer natsmesh creates for a durable subscription. `max_deliver` is unlimited on
 * purpose: the agent counts deliveries and dead-letters at `maxDeliver` itself, so an event whose
 * last delivery died with its instance is still delivered once more, to be dead-lettered, instead
 * of the server silently giving up on it.
 */
export function consumerConfig(
  service: string,
  h: ResolvedEventHandler,
  subjects: Subjects,
): Partial<ConsumerConfig> & { durable_name: string } {
  const config: Partial<ConsumerConfig> & { durable_name: string } = {
    durable_name: consumerName(service, h.pattern),
    description: `natsmesh: ${service} handles ${h.pattern}${h.ordered ? " in order" : ""}`,
    filter_subject: subjects.eventPattern(h.pattern),
    ack_policy: AckPolicy.Explicit,
    ack_wait: h.ackWaitMs * NANOS_PER_MS,
    max_deliver: -1,
    max_ack_pending: h.ordered ? 1 : MAX_ACK_PENDING,
    replay_policy: ReplayPolicy.Instant,
    deliver_policy: DeliverPolicy.New,
  };
  const from = h.startFrom;
  if (from === "all") config.deliver_policy = DeliverPolicy.All;
  else if (from instanceof Date) {
    config.deliver_policy = DeliverPolicy.StartTime;
    config.opt_start_time = from.toISOString();
  } else if (typeof from === "number") {
    config.deliver_policy = DeliverPolicy.StartSequence;
    config.opt_start_seq = from;
  }
  return config;
}

/** Settings natsmesh relies on that an existing consumer has otherwise. */
function differences(info: ConsumerInfo, want: Partial<ConsumerConfig>): string[] {
  const out: string[] = [];
  for (const key of [
    "filter_subject",
    "ack_policy",
    "ack_wait",
    "max_deliver",
    "max_ack_pending",
  ] as const) {
    const have = info.config[key];
    if (have !== want[key]) out.push(`${key} is ${String(have)}, not ${String(want[key])}`);
  }
  return out;
}

/**
 * Creates the durable consumer when it does not exist (starting where `startFrom` says), else
 * uses it as it is and returns the settings that differ, for a warning: another version of the
 * service may run with other options, and recreating the consumer would lose its place.
 */
export async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  config: Partial<ConsumerConfig> & { durable_name: string },
): Promise<{ created: boolean; differences: string[] }> {
  for (let attempt = 1; ; attempt++) {
    try {
      const info = await jsm.consumers.info(stream, config.durable_name);
      return { created: false, differences: differences(info, config) };
    } catch (err) {
      const missing =
        err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound;
      if (!missing) throw err;
    }
    try {
      await jsm.consumers.add(stream, { ...config });
      return { created: true, differences: [] };
    } catch (err) {
      // Instances starting together race to create it; the loser finds it on the next look.
      if (attempt >= 2) throw err;
    }
  }
}
