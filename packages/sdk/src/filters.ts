import type { InstanceRecord } from "@natsmesh/protocol";
import { satisfies, valid, validRange } from "semver";

/** Which instances a call may go to. */
export interface InstanceFilter {
  /** Exact version, or a semver range (`^1`, `>=2.1 <3`). */
  version?: string;
  /** Preferred zone: instances elsewhere take the call only when the zone has none. */
  zone?: string;
  /** Every entry must match the instance's metadata exactly. */
  metadata?: Record<string, string>;
}

/** Throws `TypeError` on a version filter that is neither a version nor a semver range. */
export function checkVersionFilter(version: unknown): string {
  if (typeof version !== "string" || (valid(version) === null && validRange(version) === null)) {
    throw new TypeError(`version must be a semver version or range, got ${String(version)}`);
  }
  return version;
}

/** Most (version, range) answers kept; the cache starts over beyond it. */
const MAX_VERSION_ANSWERS = 10_000;

/** Whether a version satisfies a filter, remembered: semver parsing is too slow per call. */
export class VersionMatcher {
  readonly #answers = new Map<string, boolean>();

  /** True for the exact version, or a semver version within the range `wanted`. */
  matches(version: string, wanted: string): boolean {
    if (version === wanted) return true;
    const key = `${version}\u0000${wanted}`;
    let match = this.#answers.get(key);
    if (match === undefined) {
      match = valid(version) !== null && satisfies(version, wanted);
      if (this.#answers.size >= MAX_VERSION_ANSWERS) this.#answers.clear();
      this.#answers.set(key, match);
    }
    return match;
  }
}

function metadataMatches(have: Record<string, string>, want: Record<string, string>): boolean {
  for (const key in want) if (have[key] !== want[key]) return false;
  return true;
}

/**
 * The instances of `live` a call to `method` may go to: ready (not draining or saturated),
 * weight > 0, hosting the method, not in `exclude` (tried already), of the filter's version and
 * metadata. Those are constraints; `zone` is a preference: the zone's instances when it has
 * any, all of them otherwise.
 */
export function candidates(
  live: readonly InstanceRecord[],
  method: string,
  filter: InstanceFilter,
  exclude: ReadonlySet<string> | undefined,
  versions: VersionMatcher,
): InstanceRecord[] {
  const matching: InstanceRecord[] = [];
  for (const r of live) {
    if (r.status !== "ready" || r.weight <= 0 || !r.methods.includes(method)) continue;
    if (exclude?.has(r.id)) continue;
    if (filter.version !== undefined && !versions.matches(r.version, filter.version)) continue;
    if (filter.metadata !== undefined && !metadataMatches(r.metadata, filter.metadata)) continue;
    matching.push(r);
  }
  if (filter.zone === undefined) return matching;
  const local = matching.filter((r) => r.zone === filter.zone);
  return local.length > 0 ? local : matching;
}
