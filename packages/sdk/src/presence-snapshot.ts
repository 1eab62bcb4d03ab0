import type { NatsConnection } from "@nats-io/nats-core";
import { type InstanceRecord, MeshError } from "@natsmesh/protocol";
import { type PresenceWatchOptions, watchPresence } from "./presence-watch.js";

/** Options of {@link readPresence}. */
export interface ReadPresenceOptions
  extends Pick<PresenceWatchOptions, "prefix" | "service" | "keys" | "onInvalid"> {
  /** @default 10000 */
  timeoutMs?: number;
}

/**
 * The current records of `<P>_presence` (of one service, or all), in bucket order: one
 * snapshot of {@link watchPresence}. Resolves `undefined` when the bucket does not exist;
 * rejects with the first failure (no JetStream, say), or `DEADLINE_EXCEEDED` after `timeoutMs`.
 */
export async function readPresence(
  nc: NatsConnection,
  options: ReadPresenceOptions,
): Promise<InstanceRecord[] | undefined> {
  const { timeoutMs = 10_000, ...watch } = options;
  const records = new Map<string, InstanceRecord>();
  const done = new AbortController();
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    return await new Promise<InstanceRecord[] | undefined>((resolve, reject) => {
      timeout.addEventListener("abort", () =>
        reject(new MeshError("DEADLINE_EXCEEDED", `no presence snapshot within ${timeoutMs} ms`)),
      );
      watchPresence(nc, {
        ...watch,
        signal: AbortSignal.any([done.signal, timeout]),
        onEvent: (e) =>
          e.type === "down" ? records.delete(e.key) : records.set(e.key, e.instance),
        onStatus: (s) => {
          if (s.type === "current") resolve([...records.values()]);
          else if (s.type === "waiting") resolve(undefined);
          else reject(s.error);
        },
      });
    });
  } finally {
    done.abort();
  }
}
