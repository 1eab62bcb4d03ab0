// Written against the Testcontainers 11 API as found in node_modules (GenericContainer,
// StartedTestContainer.stop({ timeout, remove }), withExposedPorts({ container, host })).
// No Docker engine exists on the machine this package was written on, so this path is not
// exercised by the package's own tests; the process runtime is.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { StartedTestContainer } from "testcontainers";
import { NatsTestingError } from "./errors.js";
import type { NatsServer } from "./nats-server.js";
import { configText, type ResolvedNatsServerOptions } from "./options.js";
import { freePorts } from "./ports.js";
import { trackDir, untrackDir } from "./reaper.js";

const STORE = "/data";
const CONFIG = "/etc/natsmesh/nats.conf";

/** Starts nats-server in a container; resolves once it logged "Server is ready". */
export async function startContainerServer(
  options: ResolvedNatsServerOptions,
): Promise<NatsServer> {
  const storeDir = await mkdtemp(join(tmpdir(), "natsmesh-nats-"));
  trackDir(storeDir);
  const [client = 0, monitor = 0] = await freePorts(2);
  const server = new ContainerNatsServer(options, storeDir, options.port || client, monitor);
  try {
    await server.restart();
    return server;
  } catch (err) {
    await server.dispose();
    throw err;
  }
}

/**
 * Every start creates a fresh container, bound to the same host ports and bind-mounting the
 * same host store directory: that is what lets `kill()` (which removes the container) be
 * followed by a `restart()` that finds the JetStream data again.
 */
class ContainerNatsServer implements NatsServer {
  readonly storeDir: string;
  readonly port: number;
  readonly monitorPort: number;
  #options: ResolvedNatsServerOptions;
  #host = "127.0.0.1";
  #container: StartedTestContainer | undefined;
  #launching: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #restarting: Promise<void> | undefined;
  #disposing: Promise<void> | undefined;

  constructor(
    options: ResolvedNatsServerOptions,
    storeDir: string,
    port: number,
    monitorPort: number,
  ) {
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

  stop(): Promise<void> {
    this.#stopping ??= this.#halt(this.#options.stopTimeoutMs);
    return this.#stopping;
  }

  kill(): Promise<void> {
    // `docker stop -t 0`: SIGKILL follows SIGTERM at once, so the server cannot shut down cleanly.
    return this.#halt(0);
  }

  restart(): Promise<void> {
    if (this.#disposing !== undefined) {
      return Promise.reject(new NatsTestingError("DISPOSED", "restart() after dispose()"));
    }
    this.#restarting ??= (async () => {
      try {
        await this.stop();
        this.#stopping = undefined;
        this.#launching = this.#launch();
        await this.#launching;
      } finally {
        this.#restarting = undefined;
      }
    })();
    return this.#restarting;
  }

  dispose(): Promise<void> {
    this.#disposing ??= (async () => {
      await this.#restarting?.catch(() => {});
      try {
        await this.stop();
      } finally {
        await rm(this.storeDir, { recursive: true, force: true });
        untrackDir(this.storeDir);
      }
    })();
    return this.#disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  async #launch(): Promise<void> {
    const { NatsContainer } = await import("@testcontainers/nats");
    const command = this.#command();
    // NatsContainer always adds `--user test --pass test`, and nats.js takes no credentials
    // from a URL; replacing the command it builds keeps `url` usable as it is, with the
    // module's image handling and "Server is ready" wait strategy.
    class Container extends NatsContainer {
      override withCommand(): this {
        return super.withCommand(command);
      }
    }
    const text = configText(this.#options);
    const container = new Container(this.#options.image)
      .withExposedPorts(
        { container: 4222, host: this.port },
        { container: 8222, host: this.monitorPort },
      )
      .withBindMounts([{ source: this.storeDir, target: STORE }])
      .withStartupTimeout(this.#options.startTimeoutMs);
    // Run as the current user so files in the bind-mounted store can be removed afterwards.
    const uid = process.getuid?.();
    const gid = process.getgid?.();
    if (uid !== undefined && gid !== undefined) container.withUser(`${uid}:${gid}`);
    if (text !== undefined) {
      container.withCopyContentToContainer([{ content: text, target: CONFIG }]);
    }
    const started = await container.start();
    this.#host = started.getHost();
    this.#container = started;
  }

  async #halt(timeoutMs: number): Promise<void> {
    // A stop that arrives while a container is being created must still reach it.
    await this.#launching?.catch(() => {});
    const container = this.#container;
    if (container === undefined) return;
    this.#container = undefined;
    await container.stop({ timeout: timeoutMs, remove: true });
  }

  #command(): string[] {
    const o = this.#options;
    const args: string[] = [];
    if (configText(o) !== undefined) args.push("-c", CONFIG);
    args.push("-p", "4222", "-m", "8222");
    if (o.jetstream) args.push("-js", "-sd", STORE);
    args.push(...o.args);
    return args;
  }
}
