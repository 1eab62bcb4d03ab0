import { once } from "node:events";
import type { Registry, RegistryOptions } from "@natsmesh/registry";
import { ExitCode, errorText, failure, usageError } from "../errors.js";
import type { Io } from "../io.js";
import { ConnectMode, connectNats } from "../nats/connect.js";
import type { GlobalOptions } from "../program.js";
import { shutdownOnSignals } from "../signals.js";

/** Heartbeats an instance may miss before it is evicted (DESIGN: 3 × heartbeat). */
const MISSED_HEARTBEATS = 3;

/** The flags of `natsmesh registry`, as parsed (absent ones `undefined`). */
export interface RegistryCommandOptions {
  readonly httpPort: number | undefined;
  readonly httpHost: string | undefined;
  readonly heartbeatTimeout: number | undefined;
  /** The agents' heartbeat (`MESH_HEARTBEAT_MS`): evict after 3 of them without a timeout flag. */
  readonly heartbeat: number | undefined;
  readonly lease: number | undefined;
  readonly replicas: number | undefined;
  readonly jwks: string | undefined;
  readonly issuer: string | undefined;
  readonly audience: string | undefined;
  /** Else the library reads `MESH_SIGNING_KEY`. */
  readonly signingKey: string | undefined;
  /** Else the library reads `MESH_UNSIGNED_PRESENCE`. */
  readonly unsignedPresence: true | undefined;
}

/** Registry options from the flags, before connecting. */
function registryOptions(global: GlobalOptions, o: RegistryCommandOptions): RegistryOptions {
  const heartbeatTimeoutMs =
    o.heartbeatTimeout ?? (o.heartbeat === undefined ? undefined : o.heartbeat * MISSED_HEARTBEATS);
  if (o.httpHost !== undefined && o.httpPort === undefined) {
    throw usageError("--http-host needs --http-port");
  }
  if (o.jwks === undefined && (o.issuer !== undefined || o.audience !== undefined)) {
    // MESH_ISSUER and MESH_AUDIENCE are shared by every process of a mesh; only a flag is a mistake.
    throw usageError(
      `--${o.issuer !== undefined ? "issuer" : "audience"} needs --jwks (or MESH_JWKS)`,
    );
  }
  return {
    prefix: global.prefix,
    ...(heartbeatTimeoutMs === undefined ? {} : { heartbeatTimeoutMs }),
    ...(o.lease === undefined ? {} : { leaseMs: o.lease }),
    ...(o.replicas === undefined ? {} : { replicas: o.replicas }),
    ...(o.httpPort === undefined
      ? {}
      : {
          http: {
            port: o.httpPort,
            ...(o.httpHost === undefined ? {} : { host: o.httpHost }),
            // The dashboard asks agents with auth for their stats with this process's token.
            ...(global.token === undefined ? {} : { dashboard: { token: global.token } }),
          },
        }),
    // The key set is passed on as given (a path, inline JSON or "kv"): the library loads it.
    // Without one, no checks, whatever MESH_JWKS says (the flag resolved it already).
    auth:
      o.jwks === undefined
        ? false
        : {
            jwks: o.jwks,
            ...(o.issuer === undefined ? {} : { issuer: o.issuer }),
            ...(o.audience === undefined ? {} : { audience: o.audience }),
            ...(o.signingKey === undefined ? {} : { signingKey: o.signingKey }),
            ...(o.unsignedPresence === undefined ? {} : { unsignedPresence: true }),
          },
  };
}

/** `natsmesh registry`: runs one registry until SIGINT or SIGTERM, logging to stdout. */
export async function registry(
  global: GlobalOptions,
  flags: RegistryCommandOptions,
  io: Io,
): Promise<number> {
  const options = registryOptions(global, flags);
  // Loaded here, not at the top: the registry and the pretty printer take about as long to
  // load as the rest of the CLI, and no other command needs them.
  const [{ startRegistry }, { createCliLogger }] = await Promise.all([
    import("@natsmesh/registry"),
    import("../output/logger.js"),
  ]);
  using shutdown = shutdownOnSignals();
  const logger = createCliLogger(global.logLevel, io);
  const nc = await connectNats(global, "registry", ConnectMode.follow);
  let running: Registry;
  try {
    running = await startRegistry({ ...options, connection: nc, logger });
  } catch (err) {
    await nc.close();
    // startRegistry checks its options before anything else: a TypeError is a bad flag.
    if (err instanceof TypeError) throw usageError(err.message);
    throw failure(`the registry did not start: ${errorText(err)}`, err);
  }
  if (!shutdown.signal.aborted) await once(shutdown.signal, "abort");
  logger.child({ component: "cli" }).info("stopping on signal");
  await running.stop();
  // The connection is ours (we passed it in): drain so the last presence writes get out.
  await nc.drain().catch(() => nc.close());
  return ExitCode.ok;
}
