import type { Msg } from "@nats-io/nats-core";
import {
  Header,
  isValidName,
  type ParsedStatsData,
  PresenceLimits,
  parseStatsData,
} from "@natsmesh/protocol";
import { isIntInRange } from "@natsmesh/protocol/internal";

/** Largest `$SRV.STATS` reply read, in bytes: 256 endpoints with full histograms fit. */
export const MAX_STATS_REPLY_BYTES = 1024 * 1024;

/** One endpoint of a `$SRV.STATS` reply, checked. */
export interface EndpointSample {
  readonly name: string;
  readonly requests: number;
  readonly errors: number;
  /** The agent's histogram and errors by code; absent from agents that do not report them. */
  readonly data: ParsedStatsData | undefined;
}

/** A checked `$SRV.STATS` reply of one instance. */
export interface InstanceSample {
  readonly service: string;
  readonly id: string;
  readonly endpoints: readonly EndpointSample[];
}

/** What a reply was: a sample, a refusal (the agent wants a token), or junk. */
export type StatsReply =
  | { kind: "sample"; sample: InstanceSample }
  | { kind: "refused"; code: string }
  | { kind: "invalid" };

const INVALID: StatsReply = { kind: "invalid" };
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads one reply to `$SRV.STATS.<service>`. Every reply is hostile: its size is checked before
 * it is parsed, then the shape, names, counts and the histogram; anything off makes it invalid.
 */
export function readStatsReply(msg: Pick<Msg, "data" | "headers">): StatsReply {
  const refused = msg.headers?.get(Header.MeshError);
  if (refused === "UNAUTHENTICATED" || refused === "FORBIDDEN")
    return { kind: "refused", code: refused };
  if (msg.data.length === 0 || msg.data.length > MAX_STATS_REPLY_BYTES) return INVALID;
  let doc: unknown;
  try {
    doc = JSON.parse(utf8.decode(msg.data));
  } catch {
    return INVALID;
  }
  if (typeof doc !== "object" || doc === null) return INVALID;
  const { type, name, id, endpoints } = doc as Record<string, unknown>;
  if (type !== "io.nats.micro.v1.stats_response" || !isValidName(name) || !isValidName(id)) {
    return INVALID;
  }
  if (!Array.isArray(endpoints) || endpoints.length > PresenceLimits.maxMethods) return INVALID;
  const out: EndpointSample[] = [];
  for (const e of endpoints) {
    if (typeof e !== "object" || e === null) return INVALID;
    const { name: method, num_requests, num_errors, data } = e as Record<string, unknown>;
    if (
      !isValidName(method) ||
      !isIntInRange(num_requests, 0, Number.MAX_SAFE_INTEGER) ||
      !isIntInRange(num_errors, 0, Number.MAX_SAFE_INTEGER)
    ) {
      return INVALID;
    }
    out.push({
      name: method,
      requests: num_requests,
      errors: num_errors,
      data: parseStatsData(data),
    });
  }
  return { kind: "sample", sample: { service: name, id, endpoints: out } };
}
