import { setTimeout as sleep } from "node:timers/promises";
import { JetStreamApiCodes, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { type MeshError, type PresenceKeys, presenceBucket } from "@natsmesh/protocol";
import { assertName, type PresenceQuotas } from "@natsmesh/protocol/internal";
import { PresenceView, type PresenceWatchEvent } from "./presence-view.js";

/**
 * Where a watch stands; reported when it changes.
 * - `current`: the snapshot is in, so the reported instances are the bucket's; changes follow.
 * - `waiting`: the bucket does not exist (no registry has run for the prefix); looked for again.
 * - `error`: looking for the bucket or watching it failed (no JetStream, server gone); retried.
 */
export type PresenceWatchStatus =
  | { type: "current"; bucket: string }
  | { type: "waiting"; bucket: string }
  | { type: "error"; bucket: string; error: unknown };

/** Options of {@link watchPresence}. */
export interface PresenceWatchOptions {
  /** Mesh prefix: the bucket is `<prefix>_presence`. */
  prefix: string;
  /** Only this service's instances. @default every service */
  service?: string;
  /** Ends the watch. */
  signal?: AbortSignal;
  /** Registry keys: only records signed by one of them are taken; others are invalid. */
  keys?: PresenceKeys;
  /** What the view keeps at most. @default {@link DEFAULT_PRESENCE_QUOTAS} */
  quotas?: PresenceQuotas;
  onEvent(event: PresenceWatchEvent): void;
  /** An entry that is not a valid record of the instance its key names; it is left out. */
  onInvalid?(key: string, error: MeshError): void;
  onStatus?(status: PresenceWatchStatus): void;
}

/** A running watch. */
export interface PresenceWatch {
  /** Settles once the watch has ended: `stop()`, its signal, or the connection closed. */
  readonly closed: Promise<void>;
  stop(): void;
  /** Reads the bucket again from the start (the keys changed): what now checks out is taken. */
  rewatch(): void;
}

/** Pause before looking for the bucket or watching again: doubling from the first to the last. */
export const PRESENCE_RETRY_MS = { first: 250, last: 5000 } as const;

/**
 * How often a running watch asks whether its bucket is still the one it watches. A watch of a
 * bucket that was deleted and created again sees nothing (nats.js resumes it past sequences the
 * new stream has not reached), so it is opened afresh once the stream's creation time changes.
 */
export const PRESENCE_CHECK_MS = 2000;
/** How many checks in a row must find the stream gone before the watch starts afresh. */
const MISSES_FOR_GONE = 3;
/** The most a check's pause grows (×{@link PRESENCE_CHECK_MS}) while the server does not answer. */
const MAX_CHECK_FACTOR = 4;

function isStreamNotFound(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as Error & { code?: unknown }).code;
  return err.name === "StreamNotFoundError" || code === JetStreamApiCodes.StreamNotFound;
}

/**
 * Follows `<P>_presence` (snapshot, then changes) until stopped. It never creates the bucket:
 * a missing one is waited for. nats.js resumes a watch across server restarts by itself; when
 * the watch fails or ends anyway, it is opened again after a doubling pause, and what vanished
 * meanwhile is reported `down` once the new snapshot is in. A bucket deleted (and perhaps created
 * again) under a running watch is noticed within {@link PRESENCE_CHECK_MS} and watched afresh
 * likewise. An empty bucket is `current` at once: nothing waits for a snapshot that will never come.
 */
export function watchPresence(nc: NatsConnection, options: PresenceWatchOptions): PresenceWatch {
  if (options.service !== undefined) assertName(options.service, "service");
  const controller = new AbortController();
  const signal =
    options.signal === undefined
      ? controller.signal
      : AbortSignal.any([options.signal, controller.signal]);
  const watcher = new PresenceWatcher(nc, options, signal);
  return {
    closed: watcher.run(),
    stop: () => controller.abort(),
    rewatch: () => watcher.rewatch(),
  };
}

class PresenceWatcher {
  readonly #nc: NatsConnection;
  readonly #o: PresenceWatchOptions;
  readonly #signal: AbortSignal;
  readonly #bucket: string;
  readonly #view: PresenceView;
  #status: PresenceWatchStatus["type"] | undefined;
  /** Stops the watch running now, if any. */
  #current: (() => void) | undefined;

  constructor(nc: NatsConnection, o: PresenceWatchOptions, signal: AbortSignal) {
    this.#nc = nc;
    this.#o = o;
    this.#signal = signal;
    this.#bucket = presenceBucket(o.prefix);
    this.#view = new PresenceView(o.prefix, o.onEvent, o.onInvalid ?? (() => undefined), {
      ...(o.keys === undefined ? {} : { keys: o.keys }),
      ...(o.quotas === undefined ? {} : { quotas: o.quotas }),
    });
  }

  /** Ends the running watch; {@link PresenceWatcher.run} opens it again from the start. */
  rewatch(): void {
    this.#current?.();
  }

  async run(): Promise<void> {
    let pause: number = PRESENCE_RETRY_MS.first;
    while (!this.#signal.aborted && !this.#nc.isClosed()) {
      try {
        if (await this.#watchOnce()) pause = PRESENCE_RETRY_MS.first;
      } catch (error) {
        if (this.#signal.aborted) break;
        this.#report({ type: "error", bucket: this.#bucket, error });
      }
      await sleep(pause, undefined, { signal: this.#signal, ref: false }).catch(() => undefined);
      pause = Math.min(PRESENCE_RETRY_MS.last, pause * 2);
    }
  }

  /** Watches until the watch ends; false when the bucket does not exist. */
  async #watchOnce(): Promise<boolean> {
    const { service } = this.#o;
    const filter = service === undefined ? ">" : `${service}.*`;
    const jsm = await jetstreamManager(this.#nc);
    const stream = `KV_${this.#bucket}`;
    let empty: boolean;
    let created: string;
    try {
      // Kvm.open() binds without asking the server, so the stream is asked whether it exists,
      // and whether the keys to watch hold anything: a watch of nothing never says it caught up.
      const info = await jsm.streams.info(
        stream,
        service === undefined ? {} : { subjects_filter: `$KV.${this.#bucket}.${filter}` },
      );
      const { state } = info;
      created = info.created;
      empty =
        service === undefined
          ? state.messages === 0
          : Object.keys(state.subjects ?? {}).length === 0;
    } catch (err) {
      if (!isStreamNotFound(err)) throw err;
      this.#report({ type: "waiting", bucket: this.#bucket });
      return false;
    }
    const kv = await new Kvm(this.#nc).open(this.#bucket);
    const iter = await kv.watch({ key: filter });
    const stop = () => iter.stop();
    this.#signal.addEventListener("abort", stop, { once: true });
    if (this.#signal.aborted) stop();
    this.#current = stop;
    const watching = new AbortController();
    // The newest revision this watch delivered: what the stream holds past it is still to come.
    let revision = 0;
    const check = { jsm, stream, created, subject: `$KV.${this.#bucket}.${filter}` };
    void this.#checkStream(check, () => revision, watching.signal).then((verdict) => {
      if (verdict === undefined) return;
      // Revisions of a new stream start again at 1: they say nothing about what was seen.
      if (verdict === "replaced") this.#view.forgetRevisions();
      stop();
    });
    try {
      // Keys of the snapshot; undefined once it is over.
      let seen: Set<string> | undefined = new Set();
      if (empty) seen = this.#endSnapshot(seen);
      for await (const entry of iter) {
        if (this.#signal.aborted) break;
        if (entry.revision > revision) revision = entry.revision;
        this.#view.apply(entry);
        // Only what the view holds counts: keys it left out cost nothing, however many.
        if (this.#view.has(entry.key)) seen?.add(entry.key);
        if (seen !== undefined && (entry.isUpdate || entry.delta === 0)) {
          seen = this.#endSnapshot(seen);
        }
      }
    } finally {
      this.#current = undefined;
      watching.abort();
      this.#signal.removeEventListener("abort", stop);
    }
    return true;
  }

  /**
   * Resolves once the running watch must be opened afresh: `replaced` when its stream is gone or
   * is another stream than the one created at `created`; `stalled` when the stream has held an
   * entry for the watch, past the newest one it delivered (`revision()`), over two checks in a row
   * while the watch delivered nothing. That is a watch whose consumer was lost with a cluster
   * node, or stuck while the stream elected a leader: nats.js does not always recover it.
   * Resolves `undefined` when `signal` ends the check first. A failed check (server away) is no
   * verdict: the next one decides.
   */
  async #checkStream(
    at: { jsm: JetStreamManager; stream: string; created: string; subject: string },
    revision: () => number,
    signal: AbortSignal,
  ): Promise<"replaced" | "stalled" | undefined> {
    const { jsm, stream, created } = at;
    const every = { signal, ref: false };
    // Every watcher of the mesh runs this check, so it must stay light while a cluster elects a
    // stream leader: checks are spread out (jitter), one that fails otherwise doubles the wait
    // (up to MAX_CHECK_FACTOR), and "not found" must be seen on MISSES_FOR_GONE checks in a row,
    // since a stream that is electing its leader can answer so; only another creation time is
    // final at once. The stall test asks for one message only when the stream is past the watch.
    let misses = 0;
    let factor = 1;
    // The revision the watch had reached when the last check found it behind; -1: it was not.
    let behindAt = -1;
    const wait = () => PRESENCE_CHECK_MS * factor * (0.75 + Math.random() * 0.5);
    while (await sleep(wait(), true, every).catch(() => false)) {
      try {
        const info = await jsm.streams.info(stream);
        if (info.created !== created) return signal.aborted ? undefined : "replaced";
        misses = 0;
        factor = 1;
        const reached = revision();
        if (info.state.last_seq > reached && (await this.#holdsAfter(at, reached))) {
          if (behindAt === reached) return signal.aborted ? undefined : "stalled";
          behindAt = reached;
        } else {
          behindAt = -1;
        }
      } catch (err) {
        if (!isStreamNotFound(err)) {
          misses = 0;
          factor = Math.min(factor * 2, MAX_CHECK_FACTOR);
        } else if (++misses >= MISSES_FOR_GONE) return signal.aborted ? undefined : "replaced";
      }
    }
    return undefined;
  }

  /** Whether `stream` holds an entry of the watched keys past `revision`. */
  async #holdsAfter(
    at: { jsm: JetStreamManager; stream: string; subject: string },
    revision: number,
  ): Promise<boolean> {
    // `next_by_subj` (nats-server 2.9+): the first message at or after `seq` on the subject.
    const query = { seq: revision + 1, next_by_subj: at.subject } as unknown as { seq: number };
    return (await at.jsm.streams.getMessage(at.stream, query)) !== null;
  }

  #endSnapshot(seen: ReadonlySet<string>): undefined {
    this.#view.reconcile(seen);
    this.#report({ type: "current", bucket: this.#bucket });
    return undefined;
  }

  #report(status: PresenceWatchStatus): void {
    if (this.#status === status.type) return;
    this.#status = status.type;
    this.#o.onStatus?.(status);
  }
}
