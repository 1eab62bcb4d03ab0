import { readFileSync, unwatchFile, watchFile } from "node:fs";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { registryBucket } from "../presence.js";
import { delay } from "../waits.js";
import { assertJwks, type JsonWebKeySet } from "./keys.js";

/** Key of the JWKS in the `<P>_registry` bucket. */
export const JWKS_KEY = "jwks";

/** Where public keys come from: a key set, inline JSON, a file path, or `"kv"` (the bucket key). */
export type JwksSource = JsonWebKeySet | string;

/** Options of {@link startKeySource}. */
export interface KeySourceOptions {
  source: JwksSource;
  /** Called with every new valid key set, the first one included. */
  onKeys: (jwks: JsonWebKeySet) => void;
  /** Called when a changed file or bucket value is not a valid key set; the old keys stay. */
  onError?: (err: unknown) => void;
  /** Needed for `"kv"`. */
  connection?: NatsConnection;
  /** @default "mesh" */
  prefix?: string;
  /**
   * How often a key file is checked for changes, ms.
   * @default 500
   */
  pollMs?: number;
}

/** A running key source; `stop()` ends its watching. */
export interface KeySource {
  readonly kind: "static" | "file" | "kv";
  stop(): void;
}

function parseJwks(text: string, where: string): JsonWebKeySet {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new TypeError(`${where} is not JSON`, { cause: err });
  }
  assertJwks(value);
  return value;
}

/**
 * Loads public keys and keeps them current: a file is polled (so an atomic replace is seen),
 * the bucket key is watched; each valid new set goes to `onKeys`, so keys rotate without a
 * restart. A file must exist and be valid at start (`TypeError` otherwise); the bucket key may
 * appear later, and until then the key set is empty and every token is refused.
 */
export async function startKeySource(options: KeySourceOptions): Promise<KeySource> {
  const { source, onKeys, onError = () => undefined } = options;
  if (typeof source !== "string") {
    assertJwks(source);
    onKeys(source);
    return { kind: "static", stop: () => undefined };
  }
  if (source.trimStart().startsWith("{")) {
    onKeys(parseJwks(source, "the inline JWKS"));
    return { kind: "static", stop: () => undefined };
  }
  if (source === "kv") return watchBucket(options, onKeys, onError);

  const path = source;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new TypeError(`cannot read the JWKS file ${path}`, { cause: err });
  }
  onKeys(parseJwks(text, `the JWKS file ${path}`));
  const listener = () => {
    try {
      const next = readFileSync(path, "utf8");
      if (next === text) return;
      text = next;
      onKeys(parseJwks(next, `the JWKS file ${path}`));
    } catch (err) {
      onError(err);
    }
  };
  watchFile(path, { interval: options.pollMs ?? 500, persistent: false }, listener);
  return { kind: "file", stop: () => unwatchFile(path, listener) };
}

async function watchBucket(
  options: KeySourceOptions,
  onKeys: (jwks: JsonWebKeySet) => void,
  onError: (err: unknown) => void,
): Promise<KeySource> {
  const nc = options.connection;
  if (nc === undefined) throw new TypeError('a "kv" key source needs a NATS connection');
  onKeys({ keys: [] });
  const stopped = new AbortController();
  let iter: { stop(): void } | undefined;
  const run = async (): Promise<void> => {
    while (!stopped.signal.aborted) {
      try {
        const kv = await new Kvm(nc).create(registryBucket(options.prefix), { history: 1 });
        const watch = await kv.watch({ key: JWKS_KEY });
        iter = watch;
        if (stopped.signal.aborted) {
          watch.stop();
          return;
        }
        for await (const entry of watch) {
          if (entry.operation !== "PUT") {
            onKeys({ keys: [] });
            continue;
          }
          try {
            onKeys(parseJwks(entry.string(), `the "${JWKS_KEY}" key of the registry bucket`));
          } catch (err) {
            onError(err);
          }
        }
      } catch (err) {
        if (!stopped.signal.aborted) onError(err);
      }
      // The watch ended (server restart, bucket removed): open it again after a pause.
      await delay(1000, stopped.signal);
    }
  };
  void run();
  return {
    kind: "kv",
    stop: () => {
      stopped.abort();
      iter?.stop();
    },
  };
}
