import { once } from "node:events";
import type { AgentAuthOptions } from "@natsmesh/agent";
import { assertInboxPrefix } from "@natsmesh/protocol/internal";
import { ExitCode, usageError } from "../errors.js";
import { ownToken } from "../files/own-token.js";
import type { Io } from "../io.js";
import { ConnectMode, connectNats } from "../nats/connect.js";
import type { GlobalOptions } from "../program.js";
import { startServiceAgent } from "../services/service-agent.js";
import { loadServiceModule } from "../services/service-module.js";
import { shutdownOnSignals } from "../signals.js";

/** The flags of `natsmesh agent`, as parsed (absent ones `undefined`). */
export interface AgentCommandOptions {
  readonly weight: number | undefined;
  readonly zone: string | undefined;
  readonly version: string | undefined;
  readonly concurrency: number | undefined;
  readonly heartbeat: number | undefined;
  readonly drainTimeout: number | undefined;
  readonly metricsPort: number | undefined;
  readonly metricsHost: string | undefined;
  readonly tokenFile: string | undefined;
  readonly jwks: string | undefined;
  readonly issuer: string | undefined;
  readonly audience: string | undefined;
  /** Inbox prefixes of the callers it answers, comma-separated. */
  readonly inboxPrefixes: string | undefined;
}

/** Token checks from `--jwks`, `--issuer`, `--audience`; none without `--jwks`. */
export function authOf(o: {
  jwks: string | undefined;
  issuer: string | undefined;
  audience: string | undefined;
}): AgentAuthOptions | false {
  if (o.jwks === undefined) return false;
  return {
    jwks: o.jwks,
    ...(o.issuer === undefined ? {} : { issuer: o.issuer }),
    ...(o.audience === undefined ? {} : { audience: o.audience }),
  };
}

/** `--inbox-prefixes` as a list, each checked against the mesh prefix: a bad one is a usage error. */
function inboxPrefixesOf(list: string | undefined, prefix: string): string[] | undefined {
  if (list === undefined) return undefined;
  try {
    return list.split(",").map((p) => assertInboxPrefix(p.trim(), prefix));
  } catch (err) {
    throw usageError(`--inbox-prefixes: ${(err as Error).message}`);
  }
}

/**
 * `natsmesh agent <module>`: runs the service a module describes as one agent until SIGINT or
 * SIGTERM, then drains it (calls in flight finish, up to the drain timeout) and exits 0. Logs
 * are pino JSON on stdout (readable lines on a terminal, unless `--json`).
 */
export async function agent(
  global: GlobalOptions,
  path: string,
  o: AgentCommandOptions,
  io: Io,
): Promise<number> {
  const inboxPrefixes = inboxPrefixesOf(o.inboxPrefixes, global.prefix);
  using shutdown = shutdownOnSignals();
  const module = await loadServiceModule(path);
  const { createCliLogger } = await import("../output/logger.js");
  const logger = createCliLogger(global.logLevel, io, { json: global.json });
  const log = logger.child({ component: "cli" });
  const nc = await connectNats(global, `agent-${module.service}`, ConnectMode.follow);
  try {
    const running = await startServiceAgent(module, path, {
      connection: nc,
      prefix: global.prefix,
      version: o.version,
      weight: o.weight,
      zone: o.zone,
      concurrency: o.concurrency,
      heartbeatMs: o.heartbeat,
      drainTimeoutMs: o.drainTimeout,
      // The flags already read MESH_METRICS_PORT/HOST: no flag and no variable means none.
      metrics:
        o.metricsPort === undefined
          ? false
          : {
              port: o.metricsPort,
              ...(o.metricsHost === undefined ? {} : { host: o.metricsHost }),
            },
      inboxPrefixes,
      auth: authOf(o),
      token: ownToken(global, o.tokenFile),
      logger,
    });
    const { record } = running.agent;
    log.info(
      {
        service: record.service,
        instance: record.id,
        version: record.version,
        weight: record.weight,
        ...(record.zone === undefined ? {} : { zone: record.zone }),
        methods: record.methods,
        events: (record.events ?? []).map((e) => e.pattern),
        subject: record.subject,
        prefix: global.prefix,
        auth: o.jwks !== undefined,
        ...(running.agent.metricsPort === undefined
          ? {}
          : {
              metrics: `http://${o.metricsHost ?? "127.0.0.1"}:${running.agent.metricsPort}/metrics`,
            }),
      },
      "agent started",
    );
    if (!shutdown.signal.aborted) await once(shutdown.signal, "abort");
    log.info({ service: record.service, instance: record.id }, "stopping on signal: draining");
    await running.stop();
    log.info({ service: record.service, instance: record.id }, "agent stopped");
  } finally {
    // The connection is ours: drain, so the last presence message (down) gets out.
    await nc.drain().catch(() => nc.close());
  }
  return ExitCode.ok;
}
