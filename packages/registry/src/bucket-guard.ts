import { type KV, KvWatchInclude } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/nats-core";
import { delay } from "@natsmesh/protocol/internal";
import type { Logger } from "pino";
import type { KvMirror, ObservedEntry } from "./kv-mirror.js";
import type { Counters } from "./stats.js";

export interface BucketGuardOptions {
  kv: KV;
  mirror: KvMirror;
  counters: Counters;
  log: Logger;
  /** Creates the presence bucket again (it was deleted); throws when it cannot. */
  recreate(): Promise<void>;
  /** Whether a read of the bucket may delete keys the table does not know. */
  settled(): boolean;
  /** Pause before watching again after a watch ended. */
  retryMs: number;
}

/** Whether `err` says the stream does not exist. */
export function isStreamNotFound(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as Error & { code?: unknown }).code;
  return err.name === "StreamNotFoundError" || code === 10059 || err.message === "stream not found";
}

/**
 * The leader's eye on its own bucket. A watch feeds every change to the mirror, which repairs
 * what someone else put, overwrote, deleted or purged; {@link BucketGuard.check}, run on the
 * sweep, compares the stream's state with what the mirror knows, so entries that vanish without
 * a trace (a purge of the stream) are noticed, and a deleted stream is created again. Runs only
 * while leading: {@link BucketGuard.start} on taking the lead, {@link BucketGuard.stop} on losing it.
 */
export class BucketGuard {
  readonly #o: BucketGuardOptions;
  #term: AbortController | undefined;
  #watch: QueuedIterator<ObservedEntry> | undefined;
  #checking = false;

  constructor(options: BucketGuardOptions) {
    this.#o = options;
  }

  /** Starts watching; resolves once the watch is open (or could not be), so a read after misses nothing. */
  async start(): Promise<void> {
    this.stop();
    const term = new AbortController();
    this.#term = term;
    await this.#open(term.signal).catch((err) =>
      this.#o.log.warn({ err }, "could not watch the presence bucket; retrying"),
    );
    void this.#follow(term.signal);
  }

  stop(): void {
    this.#term?.abort();
    this.#term = undefined;
    this.#watch?.stop();
    this.#watch = undefined;
  }

  async #open(signal: AbortSignal): Promise<void> {
    const watch = await this.#o.kv.watch({ include: KvWatchInclude.UpdatesOnly });
    if (signal.aborted) {
      watch.stop();
      return;
    }
    this.#watch = watch;
  }

  async #follow(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const watch = this.#watch;
      if (watch !== undefined) {
        try {
          for await (const entry of watch) this.#o.mirror.observe(entry);
        } catch (err) {
          this.#o.log.debug({ err }, "presence bucket watch ended");
        }
      }
      if (this.#watch === watch) this.#watch = undefined;
      if (!(await delay(this.#o.retryMs, signal))) return;
      if (this.#watch === undefined) {
        await this.#open(signal).catch((err) =>
          this.#o.log.debug({ err }, "could not watch the presence bucket"),
        );
      }
    }
  }

  /**
   * Compares the stream with what the mirror knows; reads the bucket again when entries are
   * gone without a marker, and creates the bucket again when it is gone. Never throws.
   */
  async check(): Promise<void> {
    const signal = this.#term?.signal;
    if (signal === undefined || this.#checking) return;
    this.#checking = true;
    try {
      let state: { messages: number; last_seq: number };
      try {
        state = (await this.#o.kv.status()).streamInfo.state;
      } catch (err) {
        if (!isStreamNotFound(err) || signal.aborted) return;
        await this.#recover(signal, true, "the presence bucket was deleted; creating it again");
        return;
      }
      if (signal.aborted || this.#o.mirror.consistency(state) !== "lost") return;
      await this.#recover(
        signal,
        false,
        "presence entries vanished (purged); reading the bucket again",
      );
    } catch (err) {
      this.#o.log.warn({ err }, "could not repair the presence bucket; trying again");
    } finally {
      this.#checking = false;
    }
  }

  async #recover(signal: AbortSignal, recreate: boolean, why: string): Promise<void> {
    const { counters, log, mirror } = this.#o;
    counters.foreign++;
    log.warn({ foreign: counters.foreign }, why);
    if (recreate) {
      await this.#o.recreate();
      // The old watch followed a stream that is gone.
      this.#watch?.stop();
      this.#watch = undefined;
      await this.#open(signal);
    }
    await mirror.resync(this.#o.settled(), signal);
  }
}
