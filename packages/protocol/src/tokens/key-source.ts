import { readFileSync, unwatchFile, watchFile } from "node:fs";
import { jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { type NatsConnection, PermissionViolationError } from "@nats-io/nats-core";
import { MeshError } from "../errors.js";
import { registryBucket } from "../presence.js";
import { delay, settledWithin } from "../waits.js";
import { assertJwks, type JsonWebKeySet } from "./keys.js";

/** Key of the JWKS in the `<P>_registry` bucket. */
export const JWKS_KEY = "jwks";

/**
 * Key of the registries' presence public keys in the `<P>_registry` bucket: apart from the
 * token keys (`jwks`), so a presence signing key never verifies a token.
 */
export const PRESENCE_JWKS_KEY = "presence-jwks";

/**
 * Largest key set read from a file or the bucket, in bytes (about 400 Ed25519 or 150 RSA
 * keys): a larger value is refused before it is parsed, and the old keys stay.
 */
export const MAX_JWKS_BYTES = 256 * 1024;

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
   * The key of `<P>_registry` a `"kv"` source follows.
   * @default JWKS_KEY (the token key set)
   */
  kvKey?: typeof JWKS_KEY | typeof PRESENCE_JWKS_KEY;
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

/**
 * A public key set from its JSON text: `TypeError` naming `where` when it is over
 * {@link MAX_JWKS_BYTES}, not JSON, or not a public key set.
 */
export function parseJwks(text: string, where: string): JsonWebKeySet {
  if (text.length > MAX_JWKS_BYTES) {
    throw new TypeError(`${where} is larger than ${MAX_JWKS_BYTES} bytes; refused`);
  }
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
 * appear later, and until then the key set is empty and every token is refused, but a NATS user
 * that may not read it is refused at start (`MeshError` `FORBIDDEN`).
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

/** How long a start waits for the stored key set once it knows there is one. */
const FIRST_VALUE_MS = 5000;
/** Pause before a `"kv"` watch that failed or ended is opened again. */
const RETRY_MS = 1000;

/**
 * Follows the `jwks` key (or `kvKey`) of `<P>_registry`, reading only: the bucket is never
 * created here (the registry or `natsmesh keys publish` does), so a reader needs no right to
 * manage streams. The
 * first look is awaited: a NATS user that may not read the key is refused at once with
 * `FORBIDDEN`, since waiting cannot cure that; a missing bucket or key, or JetStream out of
 * reach, can be cured, so the key set stays empty and the watch is retried every second.
 */
async function watchBucket(
  options: KeySourceOptions,
  onKeys: (jwks: JsonWebKeySet) => void,
  onError: (err: unknown) => void,
): Promise<KeySource> {
  const nc = options.connection;
  if (nc === undefined) throw new TypeError('a "kv" key source needs a NATS connection');
  const bucket = registryBucket(options.prefix);
  const key = options.kvKey ?? JWKS_KEY;
  onKeys({ keys: [] });
  const stopped = new AbortController();
  let iter: KvWatcher | undefined;
  let first: OpenedWatch | undefined;
  try {
    first = await openWatch(nc, bucket, key);
  } catch (err) {
    const denied = permissionViolation(err);
    if (denied !== undefined) {
      throw new MeshError(
        "FORBIDDEN",
        `cannot read the key set (the "${key}" key of the KV bucket ${bucket}): this NATS user may not ${denied.operation === "publish" ? "publish to" : "subscribe to"} ${denied.subject}. Allow it to read the key (see docker/nats/permissions.conf) or give the key set as a file`,
        { cause: err },
      );
    }
    onError(err);
  }
  const follow = async (opened: OpenedWatch): Promise<void> => {
    iter = opened.watch;
    if (stopped.signal.aborted) opened.watch.stop();
    for await (const entry of opened.watch) {
      if (entry.operation !== "PUT") {
        onKeys({ keys: [] });
      } else {
        try {
          // Checked before decoding: whoever can write the bucket decides the value's size.
          if (entry.value.length > MAX_JWKS_BYTES) {
            throw new TypeError(
              `the "${key}" key of the registry bucket is larger than ${MAX_JWKS_BYTES} bytes; refused`,
            );
          }
          onKeys(parseJwks(entry.string(), `the "${key}" key of the registry bucket`));
        } catch (err) {
          onError(err);
        }
      }
      opened.delivered();
    }
  };
  const run = async (opened: OpenedWatch | undefined): Promise<void> => {
    while (!stopped.signal.aborted) {
      try {
        opened ??= await openWatch(nc, bucket, key);
        await follow(opened);
      } catch (err) {
        if (!stopped.signal.aborted) onError(err);
      } finally {
        opened?.delivered();
        opened = undefined;
      }
      // The watch ended (server restart, bucket removed) or could not open: try again.
      await delay(RETRY_MS, stopped.signal);
    }
  };
  void run(first);
  // With a value stored, the start waits (bounded) for it, so a reader does not begin keyless
  // only to gain its keys a moment later.
  if (first?.hasValue) await settledWithin(first.firstValue, FIRST_VALUE_MS);
  return {
    kind: "kv",
    stop: () => {
      stopped.abort();
      iter?.stop();
    },
  };
}

interface OpenedWatch {
  watch: KvWatcher;
  /** Whether the key held a value (or a delete marker) when the watch opened. */
  hasValue: boolean;
  /** Settles once the watch delivered its first entry, or ended. */
  firstValue: Promise<void>;
  delivered(): void;
}

type KvWatcher = Awaited<ReturnType<KV["watch"]>>;

/**
 * Asks the stream whether the key holds anything (`STREAM.INFO`), then watches it (a consumer
 * filtered to the key): the two reads a `"kv"` key source needs, and all it asks of the server.
 */
async function openWatch(nc: NatsConnection, bucket: string, key: string): Promise<OpenedWatch> {
  const jsm = await jetstreamManager(nc, { checkAPI: false });
  const { state } = await jsm.streams.info(`KV_${bucket}`, {
    subjects_filter: `$KV.${bucket}.${key}`,
  });
  const kv = await new Kvm(nc).open(bucket);
  const watch = await kv.watch({ key });
  let delivered = (): void => undefined;
  const firstValue = new Promise<void>((resolve) => {
    delivered = resolve;
  });
  return { watch, hasValue: (state.num_subjects ?? 0) > 0, firstValue, delivered };
}

/** The permission violation behind `err` (nats.js wraps it in a request error), if any. */
function permissionViolation(err: unknown): PermissionViolationError | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e instanceof Error; depth++) {
    if (e instanceof PermissionViolationError) return e;
    e = e.cause;
  }
  return undefined;
}
