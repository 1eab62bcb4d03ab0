import { delay } from "@natsmesh/protocol/internal";
import type { Logger } from "pino";
import type { InstanceTable } from "./instance-table.js";
import type { KvMirror } from "./kv-mirror.js";
import type { SyncPublisher } from "./sync-publisher.js";

export interface ReconcilerOptions {
  mirror: KvMirror;
  sync: SyncPublisher;
  table: InstanceTable;
  heartbeatTimeoutMs: number;
  /** Pause before reading the bucket again after a failure. */
  retryMs: number;
  log: Logger;
}

/**
 * The leader's catch-up, on taking the lead and after a reconnect: read the bucket, ask every
 * agent to announce itself, wait one heartbeat timeout, then delete the keys of instances not
 * heard from and write the live ones that are missing or different. Writes on change go on
 * meanwhile. One run at a time: starting one aborts the one under way.
 */
export class Reconciler {
  readonly #o: ReconcilerOptions;
  #run: AbortController | undefined;
  #runs = 0;

  constructor(options: ReconcilerOptions) {
    this.#o = options;
  }

  /** Counts started runs, so a caller can tell whether one started while it waited. */
  get runs(): number {
    return this.#runs;
  }

  /**
   * Starts a run. The promise settles once the bucket has been read (or the run was aborted);
   * the rest goes on in the background. Never rejects.
   */
  start(): Promise<void> {
    this.abort();
    const controller = new AbortController();
    this.#run = controller;
    this.#runs++;
    const { signal } = controller;
    // Knowing the bucket first makes the answers to the sync below cost no writes.
    const known = this.#resync(false, signal);
    void known.then((ok) => (ok ? this.#finish(signal) : undefined));
    return known.then(() => undefined);
  }

  /** Aborts the run under way, if any: the lead was lost, or the registry stops. */
  abort(): void {
    this.#run?.abort();
    this.#run = undefined;
  }

  async #finish(signal: AbortSignal): Promise<void> {
    const { mirror, sync, table, heartbeatTimeoutMs, log } = this.#o;
    sync.publish();
    // Every live instance answers the sync or heartbeats within one timeout: what is still
    // silent after it is gone (keys left behind by an earlier run included).
    if (!(await delay(heartbeatTimeoutMs, signal))) return;
    if (!(await this.#resync(true, signal))) return;
    log.info({ instances: table.size }, "presence reconciled");
    void mirror.compact();
  }

  /** Resyncs until it succeeds or `signal` aborts; returns whether it succeeded. */
  async #resync(prune: boolean, signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      try {
        await this.#o.mirror.resync(prune, signal);
        return !signal.aborted;
      } catch (err) {
        if (signal.aborted) break;
        this.#o.log.warn({ err }, "could not read the presence bucket; retrying");
        await delay(this.#o.retryMs, signal);
      }
    }
    return false;
  }
}
