import { once } from "node:events";
import { existsSync } from "node:fs";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import type { NatsConnection } from "@nats-io/nats-core";
import { settledWithin } from "@natsmesh/protocol/internal";
import type { Registry } from "@natsmesh/registry";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import type { PresenceWatch } from "@natsmesh/sdk/internal";
import type { Logger } from "pino";
import { ExitCode, errorCode, errorText, failure } from "../errors.js";
import { type Io, note } from "../io.js";
import { ConnectMode, connectNats } from "../nats/connect.js";
import { followPresence } from "../nats/follow-presence.js";
import type { GlobalOptions } from "../program.js";
import { type ServiceAgent, startServiceAgent } from "../services/service-agent.js";
import { loadServiceModule } from "../services/service-module.js";
import { shutdownOnSignals } from "../signals.js";
import { runDemoCalls } from "../up/demo-calls.js";
import { type DemoKeys, prepareDemoKeys } from "../up/demo-keys.js";
import { findNats, type MeshNats } from "../up/find-nats.js";
import { PresenceRecords } from "../up/presence-records.js";
import { UpOutput, type UpReady } from "../up/up-output.js";
import type { LogLevel } from "../values.js";
import { DASHBOARD_PORT } from "./dashboard.js";

/** The flags of `natsmesh up`, as parsed. */
export interface UpCommandOptions {
  /** Where the store of a started nats-server and the `--auth` keys go. */
  readonly dir: string;
  /** Where to look for a local NATS server, and to start one. */
  readonly natsPort: number;
  /** The dashboard's port; `undefined`: {@link DASHBOARD_PORT}, or any free one if taken. */
  readonly port: number | undefined;
  readonly auth: boolean;
  /** `false` with `--no-demo`. */
  readonly demo: boolean;
}

/** What the flags alone do not say: whether NATS and the log level were asked for. */
export interface UpContext {
  /** NATS_URL or --server was given: use it, start nothing. */
  readonly natsGiven: boolean;
  /** The level of the components' logs (on stderr). */
  readonly logLevel: LogLevel;
}

/** The example services `up` runs, from `examples/services/`. */
const EXAMPLES = [
  { file: "echo.mjs", weight: 1 },
  { file: "echo.mjs", weight: 3 },
  { file: "greeter.mjs" },
  { file: "slow.mjs" },
  { file: "orders.mjs" },
] as const satisfies readonly { file: string; weight?: number }[];

/** With `--auth`, what each example's token allows besides announcing itself. */
const EXTRA_SCOPE: Readonly<Record<string, readonly string[]>> = {
  greeter: ["echo.say"],
  orders: ["emit:order.*"],
};

/** The dashboard's token with `--auth`: reading every service's stats. */
const DASHBOARD_SCOPE = ["stats:*"] as const;

/** How long the instances may take to appear in the presence bucket. */
const PRESENCE_TIMEOUT_MS = 15_000;
/** How long one step of the way down may take before the next goes ahead anyway. */
const STOP_STEP_MS = 15_000;
/** How long the registry gets to delete the stopped instances from the bucket. */
const GONE_TIMEOUT_MS = 3_000;

/** The repository's examples/services/, next to packages/cli/ (dist/commands/ → ../../../../). */
function examplesDir(): string {
  return fileURLToPath(new URL("../../../../examples/services/", import.meta.url));
}

/** An example running as an agent, on a connection of its own (as a process of its own would). */
interface RunningExample {
  readonly running: ServiceAgent;
  readonly nc: NatsConnection;
}

/** Everything `up` started, in the order it stops them (reversed). */
interface Started {
  nats?: MeshNats;
  registryNc?: NatsConnection;
  registry?: Registry;
  examples: RunningExample[];
  nc?: NatsConnection;
  watch?: PresenceWatch;
  mesh?: Mesh;
}

/** Starts the registry with its dashboard on `port`; the default port, if taken, becomes any. */
async function startUpRegistry(
  nc: NatsConnection,
  prefix: string,
  port: number | undefined,
  keys: DemoKeys | undefined,
  logger: Logger,
  onNote: (message: string) => void,
): Promise<Registry> {
  const { startRegistry } = await import("@natsmesh/registry");
  const start = (p: number) =>
    startRegistry({
      connection: nc,
      prefix,
      logger,
      http: {
        port: p,
        dashboard:
          keys === undefined ? {} : { token: keys.tokenSource("dashboard", DASHBOARD_SCOPE) },
      },
      auth: keys === undefined ? false : { jwks: keys.jwksFile, signingKey: keys.presenceKeyFile },
    });
  try {
    return await start(port ?? DASHBOARD_PORT);
  } catch (err) {
    if (port !== undefined || errorCode(err) !== "EADDRINUSE") {
      throw failure(`the registry did not start: ${errorText(err)}`, err);
    }
    onNote(`port ${DASHBOARD_PORT} is in use; the dashboard takes a free port instead (--port)`);
    return await start(0);
  }
}

/** Stops what `up` started, last first, each step bounded so one stuck part cannot hold the rest. */
async function stopAll(s: Started, records: PresenceRecords): Promise<void> {
  const step = (what: Promise<unknown> | undefined) =>
    what === undefined ? Promise.resolve() : settledWithin(what, STOP_STEP_MS);
  await step(s.mesh?.close());
  await step(Promise.allSettled(s.examples.map((e) => e.running.stop())));
  // Each agent said `down`: give the registry a moment to take them out of the bucket, so
  // what `natsmesh ls` shows afterwards is true.
  if (s.watch !== undefined) {
    const ids = s.examples.map((e) => e.running.agent.id);
    await records.until(ids, true, GONE_TIMEOUT_MS);
    s.watch.stop();
    await step(s.watch.closed);
  }
  await step(s.registry?.stop());
  await step(
    Promise.allSettled(
      [...s.examples.map((e) => e.nc), s.registryNc, s.nc].map((nc) =>
        nc?.drain().catch(() => nc.close()),
      ),
    ),
  );
  await step(s.nats?.server?.stop());
}

/** Starts every example as an agent on a connection of its own; those that started go in `into`. */
async function startExamples(
  dir: string,
  mesh: GlobalOptions,
  keys: DemoKeys | undefined,
  logger: Logger,
  into: RunningExample[],
): Promise<void> {
  const modules = await Promise.all(EXAMPLES.map((e) => loadServiceModule(`${dir}${e.file}`)));
  const results = await Promise.allSettled(
    EXAMPLES.map(async (example, i): Promise<RunningExample> => {
      const module = modules[i]!;
      const nc = await connectNats(mesh, `up-${module.service}`, ConnectMode.follow);
      try {
        const scope = [`announce:${module.service}`, ...(EXTRA_SCOPE[module.service] ?? [])];
        const running = await startServiceAgent(module, `${dir}${example.file}`, {
          connection: nc,
          prefix: mesh.prefix,
          weight: "weight" in example ? example.weight : undefined,
          auth: keys === undefined ? false : { jwks: keys.jwksFile },
          token: keys?.tokenSource(module.service, scope),
          presenceKeys: keys?.presenceJwksFile,
          // MESH_METRICS_PORT names one agent's port: five examples cannot all bind it.
          metrics: false,
          logger,
        });
        return { running, nc };
      } catch (err) {
        await nc.close();
        throw err;
      }
    }),
  );
  for (const r of results) if (r.status === "fulfilled") into.push(r.value);
  const failed = results.find((r) => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;
}

/**
 * `natsmesh up`: a whole mesh on this machine, with nothing to configure: NATS (found or
 * started), a registry with the dashboard, the example services (echo ×2 with weights 1 and 3,
 * greeter, slow, orders), the presence table, a few demo calls and what to try next; then
 * presence changes until SIGINT or SIGTERM, when it drains every instance and stops what it
 * started, nats-server last. A signal on the way up stops it there.
 */
export async function up(
  global: GlobalOptions,
  o: UpCommandOptions,
  context: UpContext,
  io: Io,
): Promise<number> {
  using shutdown = shutdownOnSignals();
  const stopping = () => shutdown.signal.aborted;
  const out = new UpOutput(io, global.json);
  const onNote = (message: string) => note(io, message);
  const started: Started = { examples: [] };
  const records = new PresenceRecords();
  let exitCode: number = ExitCode.ok;
  let shown = false;
  try {
    const dir = examplesDir();
    if (!existsSync(dir)) {
      throw failure(
        `the example services are not in ${dir}; run natsmesh up from a natsmesh checkout`,
      );
    }
    const nats = await findNats({
      global,
      given: context.natsGiven,
      port: o.natsPort,
      dir: o.dir,
      onNote,
    });
    started.nats = nats;
    const mesh: GlobalOptions = context.natsGiven ? global : { ...global, servers: [nats.url] };
    const keys = o.auth ? await prepareDemoKeys(o.dir, io) : undefined;
    const { createCliLogger } = await import("../output/logger.js");
    const logger = createCliLogger(context.logLevel, io, { to: io.stderr, json: global.json });
    if (stopping()) return ExitCode.ok;

    started.registryNc = await connectNats(mesh, "up-registry", ConnectMode.follow);
    started.registry = await startUpRegistry(
      started.registryNc,
      global.prefix,
      o.port,
      keys,
      logger,
      onNote,
    );
    const dashboard = `http://127.0.0.1:${started.registry.httpPort}/dashboard/`;
    if (stopping()) return ExitCode.ok;
    await startExamples(dir, mesh, keys, logger, started.examples);
    if (stopping()) return ExitCode.ok;

    // Presence as the registry records it: the table once every instance is in, then changes.
    started.nc = await connectNats(mesh, "up", ConnectMode.follow);
    let live = false;
    const followed = followPresence(started.nc, mesh, io, {
      signal: shutdown.signal,
      onEvent: (event) => {
        records.apply(event);
        if (live) out.presence(event);
      },
    });
    started.watch = followed.watch;
    const ids = started.examples.map((e) => e.running.agent.id);
    const all = await records.until(ids, false, PRESENCE_TIMEOUT_MS, shutdown.signal);
    if (stopping()) return ExitCode.ok;
    if (!all) {
      onNote(
        `not every instance reached the presence bucket within ${PRESENCE_TIMEOUT_MS / 1000} s; ` +
          "the table shows those that did",
      );
    }
    const ready: UpReady = {
      nats,
      prefix: global.prefix,
      dashboard,
      instances: [...records.byKey.values()],
      exampleModule: relative(".", `${dir}echo.mjs`),
      ...(keys === undefined
        ? {}
        : {
            token: { value: keys.callerToken, file: keys.callerTokenFile, jwks: keys.jwksFile },
            presenceKeys: keys.presenceJwksFile,
          }),
    };
    out.ready(ready);
    shown = true;
    live = true;

    if (o.demo) {
      started.mesh = await connectMesh({
        connection: started.nc,
        prefix: global.prefix,
        codec: "json",
        ...(keys === undefined
          ? {}
          : { token: keys.callerToken, presence: { keys: keys.presenceJwksFile } }),
      });
      const echo = started.examples
        .map((e) => e.running.agent.record)
        .filter((r) => r.service === "echo")
        .map((r) => ({ id: r.id, weight: r.weight }));
      // The caller token holds stats:*, which the echo instances' $SRV.STATS want with auth on.
      out.calls(await runDemoCalls(started.mesh, echo, keys?.callerToken));
    }
    out.nextSteps(ready);

    const why = await Promise.race([
      stopping() ? Promise.resolve("signal") : once(shutdown.signal, "abort").then(() => "signal"),
      ...(nats.server === undefined
        ? []
        : [nats.server.exited.then((how) => `nats-server: ${how}`)]),
      followed.watch.closed.then(() => "watch"),
    ]);
    if (why !== "signal") {
      const fatal = followed.fatal();
      if (fatal !== undefined) throw fatal;
      onNote(
        why === "watch"
          ? "the presence watch ended; stopping"
          : `nats-server stopped unexpectedly (${why}); stopping`,
      );
      exitCode = ExitCode.failure;
    }
  } finally {
    await stopAll(started, records);
    if (shown) out.stopped();
  }
  return exitCode;
}
