import { assertJwks } from "@natsmesh/protocol";
import {
  type JwksSource,
  type PresenceQuotas,
  resolvePresenceQuotas,
} from "@natsmesh/protocol/internal";
import { presenceKeysFromEnv } from "./presence-keys.js";

/** Settings of the SDK's presence view (`connectMesh({ presence })`). */
export interface PresenceOptions extends PresenceQuotas {
  /**
   * The registries' public keys (a JWKS, inline JSON, a file path, watched, or `"kv"`: the
   * `presence-jwks` key of `<P>_registry`, where signing registries publish theirs, watched;
   * never the token key set `jwks`). Given, only records signed by one of them (a registry
   * started with `auth.signingKey`, the default with auth) are taken; unsigned and wrongly
   * signed ones are ignored and counted (`mesh.presenceStats()`).
   * @default `MESH_PRESENCE_KEYS` (a file path, inline JSON or "kv"); unset, records are taken
   * unchecked
   */
  keys?: JwksSource;
}

/** {@link PresenceOptions} checked, with every default applied. */
export interface ResolvedPresenceOptions {
  readonly keys: JwksSource | undefined;
  readonly quotas: Readonly<Required<PresenceQuotas>>;
}

/**
 * `presence: true` (the default) or settings → the view's settings; `false` → `undefined`
 * (no view). Throws `TypeError` on anything else.
 */
export function resolvePresenceOptions(value: unknown): ResolvedPresenceOptions | undefined {
  if (value === false) return undefined;
  if (value === true) {
    return { keys: presenceKeysFromEnv(), quotas: resolvePresenceQuotas({}, "presence") };
  }
  if (value === null || typeof value !== "object") {
    throw new TypeError(`presence must be a boolean or an object, got ${String(value)}`);
  }
  const { keys, ...quotas } = value as PresenceOptions;
  if (keys !== undefined && typeof keys !== "string") assertJwks(keys);
  if (typeof keys === "string" && keys.trim() === "") {
    throw new TypeError('presence.keys must be a key set, inline JSON, a file path or "kv"');
  }
  return { keys: keys ?? presenceKeysFromEnv(), quotas: resolvePresenceQuotas(quotas, "presence") };
}
