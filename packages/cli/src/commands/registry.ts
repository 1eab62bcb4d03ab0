import type { Registry, RegistryOptions } from "@natsmesh/registry";
import { AUTH_OPTIONS, resolveAuthOptions } from "../auth-options.js";
import type { Command, CommandContext } from "../command.js";
import { ConnectMode, connectNats } from "../connect.js";
import { ExitCode, errorText, failure, usageError } from "../errors.js";
import { intOption, stringOption } from "../option-values.js";
import { aborted, shutdownOnSignals } from "../shutdown.js";

/** Heartbeats an instance may miss before it is evicted (DESIGN: 3 × heartbeat). */
const MISSED_HEARTBEATS = 3;
const MAX_MS = 3_600_000;

/** Registry options from the flags, falling back on `MESH_HEARTBEAT_MS`, before connecting. */
function registryOptions({ global, values, io }: CommandContext): RegistryOptions {
  const heartbeatTimeoutMs =
    intOption(values, "heartbeat-timeout", 1, MAX_MS) ??
    (global.heartbeatMs === undefined ? undefined : global.heartbeatMs * MISSED_HEARTBEATS);
  const leaseMs = intOption(values, "lease", 1, MAX_MS);
  const replicas = intOption(values, "replicas", 1, 5);
  const port = intOption(values, "http-port", 0, 65_535);
  const host = stringOption(values, "http-host");
  if (host !== undefined && port === undefined) throw usageError("--http-host needs --http-port");
  const auth = resolveAuthOptions(values, io.env);
  return {
    prefix: global.prefix,
    ...(heartbeatTimeoutMs === undefined ? {} : { heartbeatTimeoutMs }),
    ...(leaseMs === undefined ? {} : { leaseMs }),
    ...(replicas === undefined ? {} : { replicas }),
    ...(port === undefined ? {} : { http: { port, ...(host === undefined ? {} : { host }) } }),
    ...(auth === undefined ? {} : { auth }),
  };
}

/** `natsmesh registry`: runs one registry until SIGINT or SIGTERM, logging to stdout. */
export const registry: Command = {
  name: "registry",
  summary: "Run a registry: mirror presence into KV, evict dead instances",
  description:
    "Runs until SIGINT or SIGTERM, then stops gracefully (releases the leader lease) and exits 0.\n" +
    "Run several for availability: one leads and writes, the others take over when it goes.\n" +
    "Logs are pino JSON on stdout (readable lines on a terminal) at LOG_LEVEL (default info).\n" +
    "With --jwks (or MESH_JWKS) presence is signed: an up, hb or down counts only when its token\n" +
    "verifies and its scope holds announce:<service>; the rest is dropped and counted. The keys\n" +
    'are a JWKS file (re-read when it changes), inline JSON, or "kv": the "jwks" key of the\n' +
    "<prefix>_registry bucket, where `natsmesh keys publish` puts them (watched).",
  arguments: [],
  options: {
    "http-port": {
      type: "string",
      value: "N",
      description: "Serve /healthz, /v1/services, /metrics here (0: any free port)",
    },
    "http-host": {
      type: "string",
      value: "H",
      description: "Address to bind the HTTP endpoint to (default 127.0.0.1)",
    },
    "heartbeat-timeout": {
      type: "string",
      value: "MS",
      description: "Evict instances silent this long (default 3 × MESH_HEARTBEAT_MS or 3000)",
    },
    lease: { type: "string", value: "MS", description: "Leader lease time (default 5000)" },
    replicas: {
      type: "string",
      value: "N",
      description: "Replicas of the buckets it creates, 1-5 (default 1)",
    },
    ...AUTH_OPTIONS,
  },
  async run(ctx) {
    const options = registryOptions(ctx);
    // Loaded here, not at the top: the registry and the pretty printer take about as long to
    // load as the rest of the CLI, and no other command needs them.
    const [{ startRegistry }, { createCliLogger }] = await Promise.all([
      import("@natsmesh/registry"),
      import("../logger.js"),
    ]);
    using shutdown = shutdownOnSignals();
    const logger = createCliLogger(ctx.global.logLevel, ctx.io);
    const nc = await connectNats(ctx.global, "registry", ConnectMode.follow);
    let running: Registry;
    try {
      running = await startRegistry({ ...options, connection: nc, logger });
    } catch (err) {
      await nc.close();
      // startRegistry checks its options before anything else: a TypeError is a bad flag.
      if (err instanceof TypeError) throw usageError(err.message);
      throw failure(`the registry did not start: ${errorText(err)}`, err);
    }
    await aborted(shutdown.signal);
    logger.child({ component: "cli" }).info("stopping on signal");
    await running.stop();
    // The connection is ours (we passed it in): drain so the last presence writes get out.
    await nc.drain().catch(() => nc.close());
    return ExitCode.ok;
  },
};
