import type { ConnectionOptions } from "@nats-io/nats-core";
import { inboxPrefixFromEnv } from "./environment.js";
import {
  type NatsCredentials,
  natsAuthenticator,
  natsCredentialsFromEnv,
  type ResolvedNatsCredentials,
  resolveNatsCredentials,
} from "./nats-credentials.js";
import { assertInboxPrefix } from "./reply-subject.js";

/** Server used when neither an option nor `NATS_URL` names one. */
export const DEFAULT_SERVER = "nats://127.0.0.1:4222";

/**
 * Connection settings every natsmesh process uses: reconnect forever (nats.js stops after 10
 * attempts by default) and ping often enough to notice a dead server within seconds rather
 * than nats.js' default two minutes.
 */
export const CONNECTION_DEFAULTS = {
  maxReconnectAttempts: -1,
  reconnectTimeWait: 250,
  reconnectJitter: 100,
  pingInterval: 2_000,
  maxPingOut: 2,
  waitOnFirstConnect: false,
} as const satisfies ConnectionOptions;

/**
 * Splits a server list: an array, or one string of comma-separated URLs (the `NATS_URL` form).
 * Empty input gives {@link DEFAULT_SERVER}. Throws `TypeError` on a value that is not a list.
 */
export function parseServers(servers: string | readonly string[] | undefined): string[] {
  if (servers === undefined) return [DEFAULT_SERVER];
  const list = typeof servers === "string" ? servers.split(",") : servers;
  if (!Array.isArray(list)) throw new TypeError("servers must be a string or an array of strings");
  const out = list.map((s) => String(s).trim()).filter((s) => s.length > 0);
  return out.length > 0 ? out : [DEFAULT_SERVER];
}

/**
 * Bytes nats.js may buffer from synchronous publishes before it writes them out inline, instead
 * of in the microtask that follows (nats.js' default is 32 KiB). A burst of 128 calls with a
 * token reference is ~33 KB: at 32 KiB it leaves in two socket writes, and nats-server pays for
 * the extra read (measured in docs/benchmarks.md). Everything is still written within the same
 * event-loop turn; only the number of writes changes.
 */
export const FLUSH_THRESHOLD_BYTES = 256 * 1024;

/** Who a connection is: its NATS credentials and the inbox prefix its user may subscribe to. */
export interface ConnectionIdentity {
  readonly credentials?: ResolvedNatsCredentials | undefined;
  /** Absent: nats.js' `_INBOX`. */
  readonly inboxPrefix?: string | undefined;
}

/** The nats.js options that make a connection `identity` (none for an empty identity). */
export function identityOptions(identity: ConnectionIdentity = {}): ConnectionOptions {
  return {
    ...(identity.credentials === undefined
      ? {}
      : { authenticator: natsAuthenticator(identity.credentials) }),
    ...(identity.inboxPrefix === undefined ? {} : { inboxPrefix: identity.inboxPrefix }),
  };
}

/** The nats.js connection options of a natsmesh process named `name`, connecting as `identity`. */
export function connectionOptions(
  servers: string | readonly string[] | undefined,
  name: string,
  identity: ConnectionIdentity = {},
): ConnectionOptions {
  // `pendingLimit` is read by nats.js' ProtocolHandler but missing from its ConnectionOptions
  // type; connection.test.ts fails if a nats.js upgrade stops honouring it.
  const flush = { pendingLimit: FLUSH_THRESHOLD_BYTES };
  return {
    ...CONNECTION_DEFAULTS,
    ...flush,
    servers: parseServers(servers),
    name,
    ...identityOptions(identity),
  };
}

/** The identity settings of a process's options (agent, registry, SDK). */
export interface IdentityOptions {
  readonly connection?: unknown;
  readonly credentials?: NatsCredentials | undefined;
  readonly inboxPrefix?: string | undefined;
}

/**
 * Resolves the identity of the connection a process opens itself: the options, else
 * `NATS_USER`/`NATS_PASSWORD`/`NATS_TOKEN`/`NATS_CREDS`/`NATS_NKEY` and `NATS_INBOX_PREFIX`.
 * With an existing `connection` the environment is not read (that connection already has its
 * identity), but options given are still checked. Throws `TypeError` on invalid credentials or
 * an inbox prefix that overlaps `meshPrefix`.
 */
export function resolveIdentity(o: IdentityOptions, meshPrefix: string): ConnectionIdentity {
  const own = o.connection === undefined;
  const credentials = resolveNatsCredentials(
    o.credentials ?? (own ? natsCredentialsFromEnv() : undefined),
  );
  const inboxPrefix = o.inboxPrefix ?? (own ? inboxPrefixFromEnv() : undefined);
  if (inboxPrefix !== undefined) assertInboxPrefix(inboxPrefix, meshPrefix);
  return { credentials, inboxPrefix };
}
