import type { InstanceRecord } from "@natsmesh/protocol";
import { instanceRecord } from "./presence-records.js";

/** Options of {@link presenceFlood}. */
export interface PresenceFloodOptions {
  /** How many fake instances. */
  count: number;
  /** Spread over this many services, `svc0` … */
  services: number;
  /** Records of ~25 KB (256 method names of 60 characters, 32 metadata values of 250). @default false */
  big?: boolean;
  /** Records per batch. */
  batch: number;
}

/**
 * Fake instance `i` of a presence flood, as quota tests announce or store it: id `FAKE<i>`, of
 * the service `svc<i % services>`; ~25 KB when `big`.
 */
export function floodRecord(
  prefix: string,
  i: number,
  services: number,
  big = false,
): InstanceRecord {
  return instanceRecord(prefix, `svc${i % services}`, {
    id: `FAKE${i}`,
    methods: big ? Array.from({ length: 256 }, (_, m) => `m${m}`.padEnd(60, "x")) : ["pay"],
    metadata: big
      ? Object.fromEntries(Array.from({ length: 32 }, (_, k) => [`k${k}`, "v".repeat(250)]))
      : {},
  });
}

/**
 * The fake instances of a presence flood, `batch` at a time, so a test can send a batch and
 * wait for its peer to take it in before building the next: neither side holds the flood.
 */
export function* presenceFlood(
  prefix: string,
  options: PresenceFloodOptions,
): Generator<InstanceRecord[]> {
  const { count, services, big = false, batch } = options;
  for (let sent = 0; sent < count; ) {
    const records: InstanceRecord[] = [];
    for (const end = Math.min(count, sent + batch); sent < end; sent++) {
      records.push(floodRecord(prefix, sent, services, big));
    }
    yield records;
  }
}
