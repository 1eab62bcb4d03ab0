import type { ConnectionOptions, NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { connectionOptions, followConnection, identityOptions } from "@natsmesh/protocol/internal";
import { type CliError, errorCode, failure } from "../errors.js";
import type { GlobalOptions } from "../program.js";

/** How long the first connect may take before the CLI says NATS is unreachable. */
export const CONNECT_TIMEOUT_MS = 3_000;

/** How a command uses its connection. */
export const ConnectMode = {
  /** One-shot (`ls`): no reconnects; a lost server fails the command. */
  once: "once",
  /** Long-running (`watch`): reconnect forever once the first connect worked. */
  follow: "follow",
} as const;
export type ConnectMode = (typeof ConnectMode)[keyof typeof ConnectMode];

/** Why a connect failed, in a few words; errors are told apart by name and code, not text. */
function reason(err: unknown): string {
  const code = errorCode(err);
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "host not found";
  if (code === "ECONNRESET") return "connection reset";
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return "no route to host";
  const name = err instanceof Error ? err.name : "";
  if (name === "TimeoutError") return `no answer within ${CONNECT_TIMEOUT_MS / 1000}s`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * The one line a person sees when the first connect fails (exit 1). An authorization failure
 * gets its own wording: the server is there, so "is it running?" would mislead; and without
 * `credentials` given, it says how to give them.
 */
export function unreachable(
  servers: readonly string[],
  err: unknown,
  credentials = true,
): CliError {
  const where = servers.join(", ");
  if (err instanceof Error && err.name === "AuthorizationError") {
    return failure(
      credentials
        ? `NATS at ${where} refused the credentials (authorization violation).`
        : `NATS at ${where} wants credentials (authorization violation): give them with ` +
            "--user/--password, --nats-token, --creds or --nkey (or NATS_USER/NATS_PASSWORD, " +
            "NATS_TOKEN, NATS_CREDS, NATS_NKEY).",
      err,
    );
  }
  return failure(
    `cannot reach NATS at ${where} (${reason(err)}). Is nats-server running? Set --server or NATS_URL.`,
    err,
  );
}

/**
 * Connects for a command named `name`, bounded by {@link CONNECT_TIMEOUT_MS}; a failure becomes
 * the {@link unreachable} error.
 */
export async function connectNats(
  global: GlobalOptions,
  name: string,
  mode: ConnectMode,
): Promise<NatsConnection> {
  const base: ConnectionOptions =
    mode === ConnectMode.follow
      ? connectionOptions(global.servers, `natsmesh-${name}`, global.identity)
      : {
          servers: [...global.servers],
          name: `natsmesh-${name}`,
          reconnect: false,
          ...identityOptions(global.identity),
        };
  try {
    return await connect({ ...base, timeout: CONNECT_TIMEOUT_MS });
  } catch (err) {
    throw unreachable(global.servers, err, global.identity.credentials !== undefined);
  }
}

/**
 * Tells the person running a long command when the connection drops and comes back, since
 * nothing else on screen would show it. Ends when the connection closes.
 */
export function noteConnectionChanges(
  nc: NatsConnection,
  onNote: (message: string) => void,
): Promise<void> {
  let down = false;
  return followConnection(nc, {
    disconnect: (server) => {
      if (down) return;
      down = true;
      onNote(`lost the connection to NATS at ${server}; reconnecting`);
    },
    reconnect: (server) => {
      down = false;
      onNote(`reconnected to NATS at ${server}`);
    },
  }).closed;
}
