import type { KV } from "@nats-io/kv";
import {
  assertJwks,
  type JsonWebKeySet,
  PRESENCE_JWKS_KEY,
  type PresenceSigner,
} from "@natsmesh/protocol";
import { MAX_JWKS_BYTES } from "@natsmesh/protocol/internal";

type Jwk = JsonWebKeySet["keys"][number];

/** Reads and compare-and-set writes before giving up (other registries may write between). */
const ATTEMPTS = 3;

/**
 * The presence key set to store once `key` is in it: the stored set (`current`, if it is a valid
 * public set within {@link MAX_JWKS_BYTES}) with `key` in place of any key of its `kid`, last;
 * the oldest other keys dropped while the whole is larger than the limit. `undefined` when the
 * stored set already holds `key` as it is.
 */
export function mergePresenceKey(current: string | undefined, key: Jwk): JsonWebKeySet | undefined {
  let stored: Jwk[] = [];
  if (current !== undefined && current.length <= MAX_JWKS_BYTES) {
    try {
      const value: unknown = JSON.parse(current);
      assertJwks(value);
      stored = value.keys;
    } catch {
      // Not a valid public key set: readers refuse it anyway, so it is replaced.
    }
  }
  const same = stored.find((k) => k.kid === key.kid);
  if (same !== undefined && JSON.stringify(same) === JSON.stringify(key)) return undefined;
  const others = stored.filter((k) => k.kid !== key.kid);
  const size = (keys: Jwk[]) => Buffer.byteLength(JSON.stringify({ keys }));
  while (others.length > 0 && size([...others, key]) > MAX_JWKS_BYTES) others.shift();
  return { keys: [...others, key] };
}

/**
 * Puts the signer's public key under `presence-jwks` in `<P>_registry`, merged by `kid` with the
 * keys already there (other registries' keys, a rotated-out key), by compare-and-set so two
 * registries writing at once both land. Never the token key set `jwks`: a key there verifies
 * tokens. Throws when the write fails {@link ATTEMPTS} times.
 */
export async function publishPresenceKey(kv: KV, signer: PresenceSigner): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const entry = await kv.get(PRESENCE_JWKS_KEY);
    const current =
      entry?.operation === "PUT" && entry.value.length <= MAX_JWKS_BYTES
        ? entry.string()
        : undefined;
    const next = mergePresenceKey(current, signer.publicJwk);
    if (next === undefined) return;
    try {
      const value = JSON.stringify(next);
      if (entry === null) await kv.create(PRESENCE_JWKS_KEY, value);
      else await kv.update(PRESENCE_JWKS_KEY, value, entry.revision);
      return;
    } catch (err) {
      if (attempt >= ATTEMPTS) throw err;
    }
  }
}
