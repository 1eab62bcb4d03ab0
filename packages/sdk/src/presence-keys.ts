import { statSync } from "node:fs";
import type { NatsConnection } from "@nats-io/nats-core";
import { PRESENCE_JWKS_KEY, PresenceKeys } from "@natsmesh/protocol";
import {
  type JwksSource,
  type KeySource,
  parseJwks,
  startKeySource,
} from "@natsmesh/protocol/internal";

/** The variable the SDK and the CLI read the registries' public keys from. */
export const PRESENCE_KEYS_VARIABLE = "MESH_PRESENCE_KEYS";

/**
 * Checks a key source given as text (a flag, a variable): `"kv"`, inline JSON of a public key
 * set, or the path of a readable file. Returns what `presence.keys` takes (inline JSON parsed);
 * throws `TypeError` starting with `name` on anything else, before any connection is made.
 */
export function checkPresenceKeysText(text: string, name: string): JwksSource {
  const value = text.trim();
  if (value === "") {
    throw new TypeError(`${name} must be a JWKS file path, inline JSON or "kv"; it is blank`);
  }
  if (value === "kv") return value;
  if (value.startsWith("{")) {
    try {
      return parseJwks(value, "the inline JWKS");
    } catch (err) {
      throw new TypeError(`${name}: ${(err as Error).message}`, { cause: err });
    }
  }
  let file: boolean;
  try {
    file = statSync(value).isFile();
  } catch (err) {
    throw new TypeError(`${name}: cannot read the key set file ${value}`, { cause: err });
  }
  if (!file) throw new TypeError(`${name}: ${value} is not a file (a public JWKS)`);
  return value;
}

/**
 * The registries' public keys from `MESH_PRESENCE_KEYS` (a JWKS file path, inline JSON or
 * `"kv"`), or `undefined` when it is unset or blank. `connectMesh` uses it when
 * `presence.keys` is not given, and the CLI's `call`, `ls`, `watch` and `dashboard` without
 * `--presence-keys`. Throws `TypeError` naming the variable on a value that is none of those.
 */
export function presenceKeysFromEnv(env: NodeJS.ProcessEnv = process.env): JwksSource | undefined {
  const raw = env[PRESENCE_KEYS_VARIABLE];
  if (raw === undefined || raw.trim() === "") return undefined;
  return checkPresenceKeysText(raw, PRESENCE_KEYS_VARIABLE);
}

/** Registry keys that records are checked against, kept current (a file or `"kv"` is watched). */
export interface LoadedPresenceKeys {
  readonly keys: PresenceKeys;
  stop(): void;
}

/**
 * Loads `source` into a {@link PresenceKeys} and keeps it current (`"kv"` is the
 * `presence-jwks` key of `<P>_registry`, which signing registries publish); `onChange` runs after every
 * new key set but the first (entries refused under the old keys may verify now). A missing or
 * invalid file is a `TypeError`.
 */
export async function loadPresenceKeys(
  nc: NatsConnection,
  prefix: string,
  source: JwksSource,
  on: { onChange?(size: number): void; onError?(err: unknown): void } = {},
): Promise<LoadedPresenceKeys> {
  const keys = new PresenceKeys();
  let started = false;
  const running: KeySource = await startKeySource({
    source,
    connection: nc,
    prefix,
    // Never the token key set: a presence key there would verify tokens.
    kvKey: PRESENCE_JWKS_KEY,
    onKeys: (jwks) => {
      keys.setJwks(jwks);
      if (started) on.onChange?.(keys.size);
    },
    ...(on.onError === undefined ? {} : { onError: on.onError }),
  });
  started = true;
  return { keys, stop: () => running.stop() };
}
