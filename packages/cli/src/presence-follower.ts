import type { NatsConnection } from "@nats-io/nats-core";
import { presenceBucket } from "@natsmesh/protocol";
import { CliError, errorText } from "./errors.js";
import { keyFilter, type OpenPresence, openPresence } from "./presence-bucket.js";
import { PresenceView } from "./presence-view.js";
import type { InvalidEntryHandler } from "./read-instances.js";
import { pause } from "./shutdown.js";
import type { WatchEvent } from "./watch-event.js";

/** Pause before looking for the bucket or watching again: doubling from the first to the last. */
export const FOLLOW_RETRY_MS = { first: 250, last: 5_000 } as const;

/** Options of {@link followPresence}. */
export interface FollowPresenceOptions {
  readonly prefix: string;
  /** Only this service's instances; all when undefined. */
  readonly service: string | undefined;
  /** Stops following. */
  readonly signal: AbortSignal;
  readonly onEvent: (event: WatchEvent) => void;
  readonly onInvalid: InvalidEntryHandler;
  /** Notes for the person watching (waiting for the bucket, watch interrupted), on stderr. */
  readonly onNote: (message: string) => void;
}

async function watchOnce(open: OpenPresence, view: PresenceView, o: FollowPresenceOptions) {
  const iter = await open.kv.watch({ key: keyFilter(o.service) });
  const stop = () => iter.stop();
  o.signal.addEventListener("abort", stop, { once: true });
  if (o.signal.aborted) stop();
  try {
    // Keys present in the snapshot; undefined once the snapshot is over.
    let present: Set<string> | undefined = new Set();
    if (open.keys === 0) {
      view.reconcile(present);
      present = undefined;
    }
    for await (const entry of iter) {
      present?.add(entry.key);
      view.apply(entry);
      if (present !== undefined && (entry.isUpdate || entry.delta === 0)) {
        view.reconcile(present);
        present = undefined;
      }
    }
  } finally {
    o.signal.removeEventListener("abort", stop);
  }
}

/**
 * Follows the presence bucket until `signal` aborts: waits for the bucket when it does not
 * exist yet, watches it (snapshot, then changes) and re-creates the watch whenever it ends or
 * fails, as it does when the server restarts. Rejects only when the very first look finds
 * the server unable to hold the bucket (no JetStream): that will not fix itself.
 */
export async function followPresence(nc: NatsConnection, o: FollowPresenceOptions): Promise<void> {
  const view = new PresenceView(o.prefix, o.onEvent, o.onInvalid);
  let wait: number = FOLLOW_RETRY_MS.first;
  let waiting = false;
  let failing = false;
  let opened = false;
  while (!o.signal.aborted) {
    try {
      const open = await openPresence(nc, o.prefix, o.service);
      if (open === undefined) {
        if (!waiting) {
          o.onNote(
            `waiting for the bucket ${presenceBucket(o.prefix)} ` +
              `(no registry has run for prefix ${JSON.stringify(o.prefix)} yet)`,
          );
        }
        waiting = true;
      } else {
        if (waiting || failing) o.onNote(`watching ${open.bucket}`);
        waiting = false;
        failing = false;
        wait = FOLLOW_RETRY_MS.first;
        opened = true;
        await watchOnce(open, view, o);
      }
    } catch (err) {
      if (o.signal.aborted) break;
      if (!opened && err instanceof CliError) throw err;
      if (!failing) o.onNote(`watch interrupted (${errorText(err)}); retrying`);
      failing = true;
    }
    await pause(wait, o.signal);
    wait = Math.min(FOLLOW_RETRY_MS.last, wait * 2);
  }
}
