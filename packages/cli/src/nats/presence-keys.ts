import type { NatsConnection } from "@nats-io/nats-core";
import type { JwksSource } from "@natsmesh/protocol/internal";
import {
  type LoadedPresenceKeys,
  loadPresenceKeys,
  presenceKeysFromEnv,
} from "@natsmesh/sdk/internal";
import { inputError } from "../errors.js";
import { type Io, note } from "../io.js";

/** The `--presence-keys` flag of `call`, `ls`, `watch` and `dashboard`, as parsed. */
export interface PresenceKeysOption {
  readonly presenceKeys: JwksSource | undefined;
}

/**
 * The registries' public keys of `call`, `ls`, `watch` and `dashboard`: `--presence-keys` (checked by its
 * parser), else `MESH_PRESENCE_KEYS` read as the SDK reads it, else none (records unchecked).
 * A bad variable is an input error (exit 2) naming it.
 */
export function presenceKeysSource(flag: JwksSource | undefined): JwksSource | undefined {
  if (flag !== undefined) return flag;
  try {
    return presenceKeysFromEnv();
  } catch (err) {
    throw inputError((err as Error).message, err);
  }
}

/**
 * The keys loaded for a presence read or watch, kept current (`onChange` runs after each new
 * set: records refused before may verify now); `undefined` without a source. A key set that
 * changes into something invalid is noted and the old keys stay.
 */
export async function openPresenceKeys(
  nc: NatsConnection,
  prefix: string,
  source: JwksSource | undefined,
  io: Io,
  onChange?: () => void,
): Promise<LoadedPresenceKeys | undefined> {
  if (source === undefined) return undefined;
  try {
    return await loadPresenceKeys(nc, prefix, source, {
      onChange: () => onChange?.(),
      onError: (err) => note(io, `presence key set update refused: ${(err as Error).message}`),
    });
  } catch (err) {
    if (err instanceof TypeError) throw inputError(`presence keys: ${err.message}`, err);
    throw err;
  }
}
