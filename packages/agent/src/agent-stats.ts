/** Counters of what an agent refused or gave up on, since it started. */
export interface AgentStats {
  /** Calls holding a concurrency slot now. */
  readonly inflight: number;
  /** Bytes charged to the requests in flight (see `maxInflightBytes`). */
  readonly inflightBytes: number;
  /** Requests (and discovery pings) dropped because their reply subject is not an inbox. */
  readonly droppedReplies: number;
  /** Requests without a reply subject: not run, not answered. */
  readonly noReply: number;
  /**
   * Handlers that were still running when their deadline and a 250 ms grace had passed: their
   * slots were taken back and their callers answered `DEADLINE_EXCEEDED`.
   */
  readonly runaway: number;
  /** Calls refused `OVERLOADED` because every concurrency slot was taken. */
  readonly rejectedConcurrency: number;
  /** Calls refused `OVERLOADED` because the requests in flight held `maxInflightBytes`. */
  readonly rejectedMemory: number;
}
