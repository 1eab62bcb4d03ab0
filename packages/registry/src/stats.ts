/** Counters of a registry since it started (a snapshot; read `registry.stats` again for news). */
export interface RegistryStats {
  /** Live instances in memory. */
  readonly instances: number;
  /** Valid `up` messages. */
  readonly announcements: number;
  /** Valid `hb` messages. */
  readonly heartbeats: number;
  /** Valid `down` messages. */
  readonly downs: number;
  /** Instances dropped for missing heartbeats. */
  readonly evictions: number;
  /** Presence messages dropped because they did not validate. */
  readonly invalid: number;
  /** Presence messages dropped because their token was missing, invalid or not for the service. */
  readonly unauthorized: number;
  /** Presence messages dropped unverified: too many new tokens were waiting for a signature check. */
  readonly dropped: number;
  /** Presence messages refused because another identity or presence secret announced the instance. */
  readonly impostors: number;
  /**
   * Presence messages refused by a quota: a new instance beyond `maxRecords` or
   * `maxInstancesPerService`, or a record larger than `maxRecordBytes`.
   */
  readonly overQuota: number;
  /** Changes of the presence bucket by anyone but this leader (puts, deletes, purges, a deleted bucket), each repaired. */
  readonly foreign: number;
  /** Successful KV puts of presence records. */
  readonly kvPuts: number;
  /** Successful KV deletes of presence records. */
  readonly kvDeletes: number;
  /** `kvPuts + kvDeletes`. */
  readonly kvWrites: number;
  /** Presence writes that failed and were left for a retry. */
  readonly kvErrors: number;
  /** `P.presence.sync` messages published. */
  readonly syncs: number;
  /** Times this registry took the lead. */
  readonly leaderTerms: number;
  /** Times this registry lost or gave up the lead. */
  readonly leaderLosses: number;
}

/** The mutable counters behind {@link RegistryStats}. */
export class Counters {
  announcements = 0;
  heartbeats = 0;
  downs = 0;
  evictions = 0;
  invalid = 0;
  unauthorized = 0;
  dropped = 0;
  impostors = 0;
  overQuota = 0;
  foreign = 0;
  kvPuts = 0;
  kvDeletes = 0;
  kvErrors = 0;
  syncs = 0;
  leaderTerms = 0;
  leaderLosses = 0;

  snapshot(instances: number): RegistryStats {
    return {
      instances,
      announcements: this.announcements,
      heartbeats: this.heartbeats,
      downs: this.downs,
      evictions: this.evictions,
      invalid: this.invalid,
      unauthorized: this.unauthorized,
      dropped: this.dropped,
      impostors: this.impostors,
      overQuota: this.overQuota,
      foreign: this.foreign,
      kvPuts: this.kvPuts,
      kvDeletes: this.kvDeletes,
      kvWrites: this.kvPuts + this.kvDeletes,
      kvErrors: this.kvErrors,
      syncs: this.syncs,
      leaderTerms: this.leaderTerms,
      leaderLosses: this.leaderLosses,
    };
  }
}
