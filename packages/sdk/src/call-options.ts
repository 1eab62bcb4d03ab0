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

/** Throws `TypeError` unless `metadata` is an object of strings. */
function checkMetadataFilter(metadata: unknown): Record<string, string> {
  if (
    metadata === null ||
    typeof metadata !== "object" ||
    Array.isArray(metadata) ||
    !Object.values(metadata).every((v) => typeof v === "string")
  ) {
    throw new TypeError("metadata must be an object of string values");
  }
  return { ...(metadata as Record<string, string>) };
}

/**
 * The call's filter, checked (`TypeError`); {@link NO_FILTER} when it asks for none, so the
 * common call does no filter work. An empty `metadata` asks for nothing.
 */
export function instanceFilter(options: RequestOptions): InstanceFilter {
  const { version, zone, metadata } = options;
  if (version === undefined && zone === undefined && metadata === undefined) return NO_FILTER;
  const filter: InstanceFilter = {};
  if (version !== undefined) filter.version = checkVersionFilter(version);
  if (zone !== undefined) {
    if (typeof zone !== "string" || zone === "")
      throw new TypeError("zone must be a non-empty string");
    filter.zone = zone;
  }
  if (metadata !== undefined) {
    const wanted = checkMetadataFilter(metadata);
    if (Object.keys(wanted).length > 0) filter.metadata = wanted;
  }
  return filter.version === undefined && filter.zone === undefined && filter.metadata === undefined
    ? NO_FILTER
    : filter;
}

/** Whether a filter constrains the call (version, metadata); `zone` alone is a preference. */
export function isConstraint(filter: InstanceFilter): boolean {
  return filter.version !== undefined || filter.metadata !== undefined;
}

/** `UNAVAILABLE`: no instance of the service in the presence view matches the call's filter. */
export function noMatchingInstance(
  service: string,
  method: string,
  filter: InstanceFilter,
): MeshError {
  const wanted: string[] = [];
  if (filter.version !== undefined) wanted.push(`version ${filter.version}`);
  if (filter.metadata !== undefined) wanted.push(`metadata ${JSON.stringify(filter.metadata)}`);
  return new MeshError(
    "UNAVAILABLE",
    `no instance matches ${wanted.join(" and ")} (${service}.${method}, ready instances in the presence view)`,
    { data: { service, method, ...filter } },
  );
}
