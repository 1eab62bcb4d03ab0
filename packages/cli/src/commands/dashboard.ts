import { once } from "node:events";
import { type DashboardServer, PresenceFeed, serveDashboard } from "@natsmesh/dashboard";
import type { JwksSource } from "@natsmesh/protocol/internal";
import type { LoadedPresenceKeys } from "@natsmesh/sdk/internal";
import { ExitCode, failure } from "../errors.js";
import { ownToken } from "../files/own-token.js";
import { type Io, note } from "../io.js";
import { ConnectMode, connectNats, noteConnectionChanges } from "../nats/connect.js";
import { type FollowedPresence, followPresence } from "../nats/follow-presence.js";
import { openPresenceKeys, presenceKeysSource } from "../nats/presence-keys.js";
import type { GlobalOptions } from "../program.js";
import { shutdownOnSignals } from "../signals.js";

/** Where `natsmesh dashboard` listens unless told otherwise. */
export const DASHBOARD_PORT = 7765;
export const DASHBOARD_HOST = "127.0.0.1";

/** The flags of `natsmesh dashboard`, as parsed (absent or blank ones `undefined`). */
export interface DashboardCommandOptions {
  /** `--port`, else `MESH_DASHBOARD_PORT`. */
  readonly port: number | undefined;
  /** `--host`, else `MESH_DASHBOARD_HOST`. */
  readonly host: string | undefined;
  /** `--token-file`, else `MESH_TOKEN_FILE`: the token, when `--token` (`MESH_TOKEN`) is unset. */
  readonly tokenFile: string | undefined;
  /** `--presence-keys`, else `MESH_PRESENCE_KEYS`: show only records a registry signed. */
  readonly presenceKeys: JwksSource | undefined;
}

/**
 * `natsmesh dashboard`: serves the live dashboard until SIGINT or SIGTERM. Instances come from
 * a watch of the presence bucket, traffic from the agents' `$SRV.STATS` (asked with `--token`,
 * or the token in `--token-file`, when the agents check tokens). Prints the page's URL (with `--json`, `{ url, host, port }`).
 */
export async function dashboard(
  global: GlobalOptions,
  o: DashboardCommandOptions,
  io: Io,
): Promise<number> {
  using shutdown = shutdownOnSignals();
  const host = o.host ?? DASHBOARD_HOST;
  const port = o.port ?? DASHBOARD_PORT;
  const token = ownToken(global, o.tokenFile);
  const source = presenceKeysSource(o.presenceKeys);
  const nc = await connectNats(global, "dashboard", ConnectMode.follow);
  const feed = new PresenceFeed();
  let server: DashboardServer | undefined;
  let keys: LoadedPresenceKeys | undefined;
  let followed: FollowedPresence | undefined;
  try {
    // A new key set may take records refused under the old one: read the bucket again.
    keys = await openPresenceKeys(nc, global.prefix, source, io, () => followed?.watch.rewatch());
    followed = followPresence(nc, global, io, {
      ...(keys === undefined ? {} : { keys: keys.keys }),
      signal: shutdown.signal,
      onEvent: (e) => feed.set(e.key, e.type === "down" ? undefined : e.instance),
    });
    try {
      server = await serveDashboard({
        connection: nc,
        presence: feed,
        prefix: global.prefix,
        host,
        port,
        ...(token === undefined ? {} : { token }),
      });
    } catch (err) {
      followed.watch.stop();
      throw listenFailure(err, host, port);
    }
    void noteConnectionChanges(nc, (message) => note(io, message));
    io.stdout.write(
      global.json
        ? `${JSON.stringify({ url: server.url, host, port: server.port })}\n`
        : `natsmesh dashboard: ${server.url}  (prefix ${global.prefix}; Ctrl-C to stop)\n`,
    );
    // Runs until a signal, or until the watch ends by itself (no JetStream).
    await Promise.race([
      shutdown.signal.aborted ? Promise.resolve() : once(shutdown.signal, "abort"),
      followed.watch.closed,
    ]);
    followed.watch.stop();
    await followed.watch.closed;
    const fatal = followed.fatal();
    if (fatal !== undefined) throw fatal;
  } finally {
    keys?.stop();
    await server?.close();
    await nc.close();
  }
  return ExitCode.ok;
}

function listenFailure(err: unknown, host: string, port: number) {
  const code = (err as { code?: unknown }).code;
  if (code === "EADDRINUSE") {
    return failure(
      `port ${port} on ${host} is in use; pick another with --port or MESH_DASHBOARD_PORT (0: any free port)`,
      err,
    );
  }
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND") {
    return failure(
      `cannot listen on ${host}: no such local address (--host, MESH_DASHBOARD_HOST)`,
      err,
    );
  }
  if (code === "EACCES") {
    return failure(`not allowed to listen on ${host}:${port}; use a port above 1023`, err);
  }
  return err;
}
