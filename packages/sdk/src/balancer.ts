import type { InstanceRecord } from "@natsmesh/protocol";
import { satisfies, valid, validRange } from "semver";

/** Balancing strategy of a call: `queue` lets NATS pick; the others pick from presence. */
export const Balance = {
  queue: "queue",
  random: "random",
  weighted: "weighted",
  roundRobin: "round-robin",
  leastLoaded: "least-loaded",
} as const;
export type Balance = (typeof Balance)[keyof typeof Balance];

/** Which instances a call may go to. */
export interface InstanceFilter {
  /** Exact version, or a semver range (`^1`, `>=2.1 <3`). */
  version?: string;
  /** Preferred zone: instances elsewhere take the call only when the zone has none. */
  zone?: string;
  /** Every entry must match the instance's metadata exactly. */
  metadata?: Record<string, string>;
}

/** Throws `TypeError` unless `balance` names a strategy. */
export function checkBalance(balance: unknown): Balance {
  if (typeof balance !== "string" || !Object.values(Balance).includes(balance as Balance)) {
    throw new TypeError(
      `balance must be one of ${Object.values(Balance).join(", ")}, got ${String(balance)}`,
    );
  }
  return balance as Balance;
}

/** Throws `TypeError` on a version filter that is neither a version nor a semver range. */
export function checkVersionFilter(version: unknown): string {
  if (typeof version !== "string" || (valid(version) === null && validRange(version) === null)) {
    throw new TypeError(`version must be a semver version or range, got ${String(version)}`);
  }
  return version;
}

const EWMA_ALPHA = 0.3;

/** What this client knows of one instance's load: its own calls in flight and their latency. */
interface Load {
  inflight: number;
  /** The instance went away while calls to it were in flight: drop it when they end. */
  gone: boolean;
  /** Exponentially weighted moving average of latency, ms; 0 until the first reply. */
  ewma: number;
}

/**
 * Picks an instance for a call. Only instances that are ready, have weight > 0 and host the
 * method are candidates; filters narrow them; `exclude` keeps retries off instances already
 * tried. Returns `undefined` when nothing matches, and the caller uses the queue subject.
 */
export class Balancer {
  readonly #turn = new Map<string, number>();
  readonly #load = new Map<string, Load>();
  readonly #versionMatch = new Map<string, boolean>();

  pick(
    strategy: Exclude<Balance, "queue">,
    service: string,
    method: string,
    live: readonly InstanceRecord[],
    filter: InstanceFilter,
    exclude: ReadonlySet<string> | undefined,
  ): InstanceRecord | undefined {
    const candidates = this.#candidates(live, method, filter, exclude);
    if (candidates.length === 0) return undefined;
    if (candidates.length === 1) return candidates[0];
    switch (strategy) {
      case "random":
        return candidates[Math.floor(Math.random() * candidates.length)];
      case "weighted":
        return weighted(candidates);
      case "round-robin": {
        // A stable order (by id) makes the turns exact whatever order presence arrived in.
        candidates.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        const turn = this.#turn.get(service) ?? 0;
        this.#turn.set(service, turn + 1);
        return candidates[turn % candidates.length];
      }
      case "least-loaded":
        return this.#leastLoaded(candidates);
    }
  }

  /** Call started on an instance (for least-loaded). */
  started(id: string): void {
    const load = this.#load.get(id);
    if (load === undefined) this.#load.set(id, { inflight: 1, ewma: 0, gone: false });
    else load.inflight++;
  }

  /** Call on an instance ended after `ms`. */
  finished(id: string, ms: number): void {
    const load = this.#load.get(id);
    if (load === undefined) return;
    load.inflight--;
    if (load.gone && load.inflight <= 0) {
      this.#load.delete(id);
      return;
    }
    load.ewma = load.ewma === 0 ? ms : load.ewma + EWMA_ALPHA * (ms - load.ewma);
  }

  /** Forgets instances that are gone, so the load table stays bounded by the live set. */
  forget(id: string): void {
    const load = this.#load.get(id);
    if (load === undefined) return;
    if (load.inflight <= 0) this.#load.delete(id);
    else load.gone = true;
  }

  #candidates(
    live: readonly InstanceRecord[],
    method: string,
    filter: InstanceFilter,
    exclude: ReadonlySet<string> | undefined,
  ): InstanceRecord[] {
    const matching: InstanceRecord[] = [];
    for (const r of live) {
      if (r.weight <= 0 || !r.methods.includes(method)) continue;
      if (exclude?.has(r.id)) continue;
      if (filter.version !== undefined && !this.#version(r.version, filter.version)) continue;
      if (filter.metadata !== undefined && !metadataMatches(r.metadata, filter.metadata)) continue;
      matching.push(r);
    }
    if (filter.zone === undefined) return matching;
    const local = matching.filter((r) => r.zone === filter.zone);
    return local.length > 0 ? local : matching;
  }

  #version(version: string, wanted: string): boolean {
    if (version === wanted) return true;
    const key = `${version}\u0000${wanted}`;
    let match = this.#versionMatch.get(key);
    if (match === undefined) {
      match = valid(version) !== null && satisfies(version, wanted);
      if (this.#versionMatch.size > 10_000) this.#versionMatch.clear();
      this.#versionMatch.set(key, match);
    }
    return match;
  }

  /** Power of two choices on (in flight + 1) × latency EWMA; an instance without data scores 0. */
  #leastLoaded(candidates: InstanceRecord[]): InstanceRecord {
    const i = Math.floor(Math.random() * candidates.length);
    let j = Math.floor(Math.random() * (candidates.length - 1));
    if (j >= i) j++;
    const a = candidates[i]!;
    const b = candidates[j]!;
    return this.#score(a) <= this.#score(b) ? a : b;
  }

  #score(r: InstanceRecord): number {
    const load = this.#load.get(r.id);
    return load === undefined ? 0 : (load.inflight + 1) * load.ewma;
  }
}

function weighted(candidates: InstanceRecord[]): InstanceRecord {
  let total = 0;
  for (const r of candidates) total += r.weight;
  let point = Math.random() * total;
  for (const r of candidates) {
    point -= r.weight;
    if (point < 0) return r;
  }
  return candidates[candidates.length - 1]!;
}

function metadataMatches(have: Record<string, string>, want: Record<string, string>): boolean {
  for (const key in want) if (have[key] !== want[key]) return false;
  return true;
}
