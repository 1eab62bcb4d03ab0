import { randomBytes } from "node:crypto";
import { checkInt } from "@natsmesh/protocol/internal";
import { waitForCluster } from "./cluster-ready.js";
import { NatsTestingError } from "./errors.js";
import type { NatsServer } from "./nats-server.js";
import {
  type NatsServerOptions,
  type ResolvedNatsServerOptions,
  resolveNatsServerOptions,
} from "./options.js";
import { freePorts } from "./ports.js";
import { type ProcessNatsServer, startProcessServer } from "./process-server.js";

/** Options of {@link startNatsCluster}: those of every node, plus the cluster's own. */
export interface NatsClusterOptions
  extends Omit<NatsServerOptions, "runtime" | "port" | "image" | "jetstream"> {
  /** Number of routed servers. @default 3 */
  size?: number;
  /** Cluster name; node `i` is named `<name>-n<i>`. @default a unique `natsmesh-<hex>` */
  name?: string;
}

/** Routed nats-server processes with clustered JetStream. */
export interface NatsCluster {
  /** The cluster name. */
  readonly name: string;
  /** The nodes, each stoppable, killable and restartable on its own (ports and store kept). */
  readonly servers: readonly NatsServer[];
  /** Every node's client URL, for `connect({ servers: cluster.urls })`. */
  readonly urls: string[];
  /**
   * Waits until every running node is routed to the others and JetStream has a meta leader
   * that sees them all, e.g. after restarting a node.
   * @param timeoutMs - @default the cluster's `startTimeoutMs`
   */
  waitReady(timeoutMs?: number): Promise<void>;
  /** Stops every node gracefully, keeping the stores. Idempotent: always the same promise. */
  stop(): Promise<void>;
  /** Final stop: stops every node and removes all temporary directories. Idempotent. */
  dispose(): Promise<void>;
  /** Same as {@link NatsCluster.dispose}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Defaults of {@link NatsClusterOptions} beyond those of a single server. */
export const DEFAULT_NATS_CLUSTER_SIZE = 3;

/**
 * Starts `size` routed nats-server processes with JetStream (cluster via local processes
 * only), and resolves once the cluster has formed and elected a JetStream meta leader.
 *
 * @example
 * ```ts
 * await using cluster = await startNatsCluster();
 * const nc = await connect({ servers: cluster.urls });
 * await new Kvm(nc).create("b", { replicas: 3 });
 * ```
 */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const {
    size: sizeOption = DEFAULT_NATS_CLUSTER_SIZE,
    name = `natsmesh-${randomBytes(4).toString("hex")}`,
    ...rest
  } = options;
  const size = checkInt(sizeOption, "size", 1, Number.MAX_SAFE_INTEGER);
  if (!/^[A-Za-z0-9_-]+$/.test(name)) {
    throw new TypeError(`name must match [A-Za-z0-9_-]+, got ${name}`);
  }
  const node = resolveNatsServerOptions({ ...rest, runtime: "process", port: 0, jetstream: true });
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNodes(name, size, node);
    } catch (err) {
      // Cluster ports are reserved before the servers bind them; another process may take one
      // in between. Rare, and cured by trying again with fresh ports.
      const portTaken = err instanceof NatsTestingError && err.code === "PORT_IN_USE";
      if (!portTaken || attempt >= PORT_ATTEMPTS) throw err;
    }
  }
}

const PORT_ATTEMPTS = 3;

async function startNodes(
  name: string,
  size: number,
  node: ResolvedNatsServerOptions,
): Promise<ProcessNatsCluster> {
  // Routes must name every node's cluster port before any node starts, so these are chosen
  // here rather than by the servers themselves.
  const clusterPorts = await freePorts(size);
  const routes = clusterPorts.map((p) => `nats://127.0.0.1:${p}`).join(",");
  const started = await Promise.allSettled(
    clusterPorts.map((port, i) =>
      startProcessServer(node, {
        args: [
          ...["--cluster", `nats://127.0.0.1:${port}`, "--routes", routes],
          ...["--cluster_name", name, "--server_name", `${name}-n${i}`],
        ],
      }),
    ),
  );
  const servers = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const cluster = new ProcessNatsCluster(name, servers, node.startTimeoutMs);
  const failed = started.find((s) => s.status === "rejected");
  try {
    if (failed !== undefined) throw failed.reason;
    await cluster.waitReady();
    return cluster;
  } catch (err) {
    await cluster.dispose();
    throw err;
  }
}

class ProcessNatsCluster implements NatsCluster {
  readonly name: string;
  readonly servers: readonly ProcessNatsServer[];
  #timeoutMs: number;
  #stopping: Promise<void> | undefined;
  #disposing: Promise<void> | undefined;

  constructor(name: string, servers: readonly ProcessNatsServer[], timeoutMs: number) {
    this.name = name;
    this.servers = servers;
    this.#timeoutMs = timeoutMs;
  }

  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  async waitReady(timeoutMs = this.#timeoutMs): Promise<void> {
    const nodes = this.servers.map((s, i) => ({
      name: `${this.name}-n${i}`,
      get monitorPort() {
        return s.monitorPort;
      },
      get running() {
        return s.running;
      },
    }));
    const missing = await waitForCluster(nodes, timeoutMs);
    if (missing !== undefined) {
      throw new NatsTestingError(
        "CLUSTER_TIMEOUT",
        `cluster ${this.name} was not ready within ${timeoutMs} ms: ${missing}`,
      );
    }
  }

  stop(): Promise<void> {
    this.#stopping ??= settleAll(this.servers.map((s) => s.stop()));
    return this.#stopping;
  }

  dispose(): Promise<void> {
    this.#disposing ??= settleAll(this.servers.map((s) => s.dispose()));
    return this.#disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

/** Waits for every promise, then rethrows the first failure, so one bad node stops no others. */
async function settleAll(promises: Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r) => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;
}
