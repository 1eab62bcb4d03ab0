import { nuid } from "@nats-io/nats-core";
import { MeshError } from "@natsmesh/protocol";
import type { CallScope } from "./call.js";
import { checkVersionFilter, type InstanceFilter } from "./filters.js";
import type { RequestOptions } from "./options.js";

/** A caller's idempotency key travels in a header: printable ASCII, bounded. Default: a NUID. */
export function checkIdempotencyKey(key: unknown): string {
  if (key === undefined) return nuid.next();
  if (typeof key !== "string" || !/^[\x21-\x7e]{1,128}$/.test(key)) {
    throw new TypeError("idempotencyKey must be 1-128 printable ASCII characters without spaces");
  }
  return key;
}

/** Throws `TypeError` unless a call's own token can travel in a header line. */
export function checkOwnToken(own: unknown): string {
  if (typeof own !== "string" || own.length === 0 || /[\r\n]/.test(own)) {
    throw new TypeError("token must be a non-empty string without CR/LF");
  }
  return own;
}

/** The mesh's token: now when it is held, else once fetched; `undefined` without one. */
export function meshToken(scope: CallScope): string | undefined | Promise<string> {
  const provider = scope.token;
  if (provider === undefined) return undefined;
  const current = provider.current();
  if (current !== undefined) return current;
  return provider.get().catch((err: unknown) => {
    throw new MeshError("UNAUTHENTICATED", "the mesh's token function failed", { cause: err });
  });
}

/** The `Authorization` value of a call: its own token, else the mesh's (fetched if need be). */
export function bearer(
  scope: CallScope,
  own: string | undefined,
): string | undefined | Promise<string> {
  if (own !== undefined) return `Bearer ${checkOwnToken(own)}`;
  const token = meshToken(scope);
  return typeof token === "object" ? token.then((t) => `Bearer ${t}`) : token && `Bearer ${token}`;
}

export const NO_FILTER: InstanceFilter = Object.freeze({});

export function instanceFilter(options: RequestOptions): InstanceFilter {
  const filter: InstanceFilter = {};
  if (options.version !== undefined) filter.version = checkVersionFilter(options.version);
  if (options.zone !== undefined) filter.zone = options.zone;
  if (options.metadata !== undefined) filter.metadata = options.metadata;
  return filter;
}
