import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { type NatsProcess, spawnNatsProcess } from "./nats-process.js";
import type { NatsServer } from "./nats-server.js";
import { configText, hasConfigText, type ResolvedNatsServerOptions } from "./options.js";
import { trackDir, untrackDir } from "./reaper.js";
import { type HaltMode, ServerLifecycle } from "./server-lifecycle.js";

/** What a cluster adds to a single server. */
export interface ProcessServerExtras {
  /** Arguments appended after everything else (cluster, routes, names). */
  args?: readonly string[];
}

/** Starts a local nats-server process; resolves once it accepts clients. */
export async function startProcessServer(
  options: ResolvedNatsServerOptions,
  extras: ProcessServerExtras = {},
): Promise<ProcessNatsServer> {
  const root = await mkdtemp(join(tmpdir(), "natsmesh-nats-"));
  trackDir(root);
  const server = new ProcessNatsServer(options, root, extras.args ?? []);
  try {
    await server.init();
    return server;
  } catch (err) {
    await server.dispose();
    throw err;
  }
}

/**
 * One nats-server, as a sequence of processes that share ports and store. The first start
 * passes `-1` for the ports the caller left open, learns them from the ports file, and every
 * later start pins them, so clients reconnect to the same URL and the store is found again.
 */
export class ProcessNatsServer extends ServerLifecycle implements NatsServer {
  readonly storeDir: string;
  #options: ResolvedNatsServerOptions;
  #root: string;
  #portsDir: string;
  #configFile: string;
  #extraArgs: readonly string[];
  #port: number;
  #monitorPort = 0;
  #process: NatsProcess | undefined;

  constructor(options: ResolvedNatsServerOptions, root: string, extraArgs: readonly string[]) {
    super();
    this.#options = options;
    this.#root = root;
    this.storeDir = join(root, "store");
    this.#portsDir = join(root, "run");
    this.#configFile = join(root, "nats.conf");
    this.#extraArgs = extraArgs;
    this.#port = options.port;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  get monitorPort(): number {
    return this.#monitorPort;
  }

  get pid(): number | undefined {
    return this.running ? this.#process?.pid : undefined;
  }

  get running(): boolean {
    return this.#process !== undefined && !this.#process.hasExited;
  }

  /** Prepares the directories and starts the first process. */
  async init(): Promise<void> {
    await mkdir(this.storeDir, { recursive: true });
    await mkdir(this.#portsDir, { recursive: true });
    const o = this.#options;
    // A caller's file alone is run as it is; with text of ours it is included by a written one.
    const include = o.configFile === undefined ? undefined : relative(this.#root, o.configFile);
    const text = hasConfigText(o) ? configText(o, include) : undefined;
    if (text !== undefined) await writeFile(this.#configFile, text);
    await this.start();
  }

  protected async launch(): Promise<void> {
    const proc = spawnNatsProcess({
      binary: this.#options.binary,
      args: this.#args(),
      portsDir: this.#portsDir,
      startTimeoutMs: this.#options.startTimeoutMs,
      env: this.#options.env,
    });
    this.#process = proc;
    try {
      const ports = await proc.ready;
      this.#port = ports.client;
      this.#monitorPort = ports.monitor ?? this.#monitorPort;
    } catch (err) {
      await proc.terminate("SIGKILL", 0);
      throw err;
    }
  }

  protected async halt(mode: HaltMode): Promise<void> {
    await this.#process?.terminate(
      mode === "graceful" ? "SIGTERM" : "SIGKILL",
      this.#options.stopTimeoutMs,
    );
  }

  protected async release(): Promise<void> {
    await rm(this.#root, { recursive: true, force: true });
    untrackDir(this.#root);
  }

  #args(): string[] {
    const o = this.#options;
    const args: string[] = [];
    // The config file comes first: flags given after it override the same settings.
    if (hasConfigText(o)) args.push("-c", this.#configFile);
    else if (o.configFile !== undefined) args.push("-c", o.configFile);
    args.push("-a", "127.0.0.1", "-p", String(this.#port || -1));
    args.push("-m", String(this.#monitorPort || -1));
    args.push("--ports_file_dir", this.#portsDir);
    if (o.jetstream) args.push("-js", "-sd", this.storeDir);
    args.push(...o.args, ...this.#extraArgs);
    return args;
  }
}
