import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { StartedTestContainer } from "testcontainers";
import { NatsTestingError } from "./errors.js";
import type { NatsServer } from "./nats-server.js";
import { configText, hasConfigText, type ResolvedNatsServerOptions } from "./options.js";
import { freePorts } from "./ports.js";
import { trackContainer, trackDir, untrackContainer, untrackDir } from "./reaper.js";
import { type HaltMode, ServerLifecycle } from "./server-lifecycle.js";
import { canConnect, waitUntil } from "./wait.js";

const STORE = "/data";
const CONFIG = "/etc/natsmesh/nats.conf";
/** Where a caller's `configFile` goes, beside {@link CONFIG} so that file can include it. */
const CALLER_CONFIG = "/etc/natsmesh/caller.conf";
const READY_LINE = /Server is ready/;
/** Label on every container, naming its store directory, so a test or an operator can find it. */
export const CONTAINER_LABEL = "io.natsmesh.testing.store";

/** Starts nats-server in a container; resolves once it accepts clients. */
export async function startContainerServer(
  options: ResolvedNatsServerOptions,
): Promise<NatsServer> {
  const storeDir = await mkdtemp(join(tmpdir(), "natsmesh-nats-"));
  trackDir(storeDir);
  const [client = 0, monitor = 0] = await freePorts(2);
  const server = new ContainerNatsServer(options, storeDir, options.port || client, monitor);
  try {
    await server.start();
    return server;
  } catch (err) {
    await server.dispose();
    throw err;
  }
}

/**
 * Every run is a fresh container on the same ports, bind-mounting the same store directory of
 * this machine: that is what lets `kill()` (which removes the container) be followed by a
 * `restart()` that finds the JetStream data again.
 */
class ContainerNatsServer extends ServerLifecycle implements NatsServer {
  readonly storeDir: string;
  readonly port: number;
  readonly monitorPort: number;
  #options: ResolvedNatsServerOptions;
  #host = "127.0.0.1";
  #container: StartedTestContainer | undefined;

  constructor(
    options: ResolvedNatsServerOptions,
    storeDir: string,
    port: number,
    monitorPort: number,
  ) {
    super();
    this.#options = options;
    this.storeDir = storeDir;
    this.port = port;
    this.monitorPort = monitorPort;
  }

  get url(): string {
    return `nats://${this.#host}:${this.port}`;
  }

  get pid(): undefined {
    return undefined;
  }

  get running(): boolean {
    return this.#container !== undefined;
  }

  protected async launch(): Promise<void> {
    const { GenericContainer, Wait } = await import("testcontainers");
    const o = this.#options;
    const host = o.network === "host";
    const container = new GenericContainer(o.image)
      .withCommand(this.#command())
      .withLabels({ [CONTAINER_LABEL]: this.storeDir })
      .withBindMounts([{ source: this.storeDir, target: STORE }])
      .withWaitStrategy(Wait.forLogMessage(READY_LINE))
      .withStartupTimeout(o.startTimeoutMs);
    if (host) {
      container.withNetworkMode("host");
    } else {
      container.withExposedPorts(
        { container: 4222, host: this.port },
        { container: 8222, host: this.monitorPort },
      );
    }
    // Run as the current user so files in the bind-mounted store can be removed afterwards.
    const uid = process.getuid?.();
    const gid = process.getgid?.();
    if (uid !== undefined && gid !== undefined) container.withUser(`${uid}:${gid}`);
    if (Object.keys(o.env).length > 0) container.withEnvironment({ ...o.env });
    if (o.configFile !== undefined) {
      container.withCopyFilesToContainer([{ source: o.configFile, target: CALLER_CONFIG }]);
    }
    if (hasConfigText(o)) {
      const include = o.configFile === undefined ? undefined : "caller.conf";
      container.withCopyContentToContainer([{ content: configText(o, include)!, target: CONFIG }]);
    }
    let started: StartedTestContainer;
    try {
      started = await container.start();
    } catch (err) {
      throw new NatsTestingError(
        "START_FAILED",
        `nats-server in a container of ${o.image} (network ${o.network}) did not start: ` +
          `${err instanceof Error ? err.message : String(err)}\ncommand: ${this.#command().join(" ")}`,
        { cause: err },
      );
    }
    this.#container = started;
    trackContainer(started.getId());
    this.#host = host ? "127.0.0.1" : started.getHost();
    // Published ports go through the engine's proxy, which may lag behind the server's log line.
    const reachable = await waitUntil(() => canConnect(this.#host, this.port, 1_000), {
      timeoutMs: o.startTimeoutMs,
    });
    if (!reachable) {
      await this.halt("kill");
      throw new NatsTestingError(
        "START_TIMEOUT",
        `nats-server in a container of ${o.image} accepted no TCP connection on ${this.#host}:${this.port} within ${o.startTimeoutMs} ms`,
      );
    }
  }

  protected async halt(mode: HaltMode): Promise<void> {
    const container = this.#container;
    if (container === undefined) return;
    this.#container = undefined;
    if (mode === "kill") {
      // A crash: SIGKILL, with no chance to shut down cleanly (`docker kill`).
      const { getContainerRuntimeClient } = await import("testcontainers");
      const client = await getContainerRuntimeClient();
      await client.container
        .getById(container.getId())
        .kill()
        .catch((err: { statusCode?: number }) => {
          // 409: it is not running any more, which is what was asked.
          if (err.statusCode !== 409) throw err;
        });
    }
    // `docker stop -t <stopTimeout>`: SIGTERM, then SIGKILL once the timeout has passed.
    await container.stop({ timeout: this.#options.stopTimeoutMs, remove: true });
    untrackContainer(container.getId());
  }

  protected async release(): Promise<void> {
    await rm(this.storeDir, { recursive: true, force: true });
    untrackDir(this.storeDir);
  }

  #command(): string[] {
    const o = this.#options;
    const args: string[] = [];
    if (hasConfigText(o)) args.push("-c", CONFIG);
    else if (o.configFile !== undefined) args.push("-c", CALLER_CONFIG);
    if (o.network === "host") {
      args.push("-a", "127.0.0.1", "-p", String(this.port), "-m", String(this.monitorPort));
    } else {
      args.push("-p", "4222", "-m", "8222");
    }
    if (o.jetstream) args.push("-js", "-sd", STORE);
    args.push(...o.args);
    return args;
  }
}
