import type { NatsConnection } from "@nats-io/nats-core";
import { type InstanceRecord, presenceBucket } from "@natsmesh/protocol";
import { delay, lookupPresence } from "@natsmesh/protocol/internal";
import type { Logger } from "pino";

/** Heartbeats an agent gives registries to put it into the presence bucket before it says so. */
export const PRESENCE_CHECK_HEARTBEATS = 5;
/** The first look is never sooner than this: a registry taking the lead needs a moment. */
const FIRST_CHECK_MIN_MS = 1000;
/** Looks after a miss double up to this, so a lasting problem is one line a minute at most. */
const CHECK_MAX_MS = 60_000;

export interface PresenceCheckOptions {
  connection: NatsConnection;
  prefix: string;
  heartbeatMs: number;
  record: () => InstanceRecord;
  log: Logger;
}

/**
 * Makes an agent that nobody can find say so. An announcement the registry refuses (a token
 * without `announce:<service>`), a registry that is not running or runs with another prefix:
 * all leave the agent serving its queue subject but out of the presence bucket, invisible to
 * presence strategies and `natsmesh ls`. So, a few heartbeats after it starts (and after each
 * reconnect), the agent reads its own key once; while it is missing, it warns and looks again
 * at doubling intervals, and it says when it appears. One key read per look, never per call.
 */
export class PresenceCheck {
  readonly #o: PresenceCheckOptions;
  #run: AbortController | undefined;

  constructor(options: PresenceCheckOptions) {
    this.#o = options;
  }

  /** (Re)starts the looks, from the first one. */
  start(): void {
    this.#run?.abort();
    const run = new AbortController();
    this.#run = run;
    void this.#check(run.signal);
  }

  stop(): void {
    this.#run?.abort();
  }

  async #check(signal: AbortSignal): Promise<void> {
    const { connection, prefix, heartbeatMs, log } = this.#o;
    const bucket = presenceBucket(prefix);
    let waitMs = Math.max(FIRST_CHECK_MIN_MS, PRESENCE_CHECK_HEARTBEATS * heartbeatMs);
    let sinceMs = 0;
    let warned = false;
    while (await delay(waitMs, signal)) {
      sinceMs += waitMs;
      const { service, id } = this.#o.record();
      let reason: string;
      try {
        const found = await lookupPresence(connection, prefix, service, id);
        if (signal.aborted) return;
        if (found.bucket && found.record !== undefined) {
          if (warned)
            log.info({ bucket, presence: "found" }, "this instance is in the presence bucket now");
          return;
        }
        reason = found.bucket
          ? `a registry refused its announcement (with auth on, the agent's token must hold announce:${service}; ` +
            "the registry's log says why) or no registry is running"
          : `the bucket does not exist: no registry has run with prefix "${prefix}" (start one, or check MESH_PREFIX)`;
      } catch (err) {
        if (signal.aborted || connection.isClosed()) return;
        reason = `the bucket could not be read (${(err as Error).message}); registries need JetStream`;
      }
      log.warn(
        { bucket, presence: "missing", afterMs: sinceMs },
        `this instance is not in the presence bucket ${bucket} after ${sinceMs} ms: ${reason}. ` +
          "Calls with balance queue still reach it; presence strategies and natsmesh ls do not see it",
      );
      warned = true;
      waitMs = Math.min(CHECK_MAX_MS, waitMs * 2);
    }
  }
}
