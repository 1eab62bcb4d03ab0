import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/nats-core";

/** The bucket's last stream sequence: it moves on every put and delete, by anyone. */
export async function lastSeq(kv: KV): Promise<number> {
  return (await kv.status()).streamInfo.state.last_seq;
}

/** A KV watch recording every change with the monotonic time it arrived. */
export interface Recorder {
  readonly events: { key: string; op: string; at: number; value: string }[];
  stop(): void;
}

/** Starts recording changes of `kv` (updates only, not what it holds already). */
export async function record(kv: KV): Promise<Recorder> {
  const events: Recorder["events"] = [];
  const watch: QueuedIterator<KvWatchEntry> = await kv.watch({ include: "updates" });
  void (async () => {
    for await (const e of watch) {
      events.push({ key: e.key, op: e.operation, at: performance.now(), value: e.string() });
    }
  })();
  return { events, stop: () => watch.stop() };
}

/** `test/fixtures/<name>.mjs`, for `startFixture()`. */
export function fixture(name: "agent" | "registry" | "probed-registry"): URL {
  return new URL(`./fixtures/${name}.mjs`, import.meta.url);
}
