import type { NatsConnection } from "@nats-io/nats-core";
import type { AgentStats } from "@natsmesh/agent";
import type { InstanceRecord } from "@natsmesh/protocol";
import type { TestProcess } from "@natsmesh/testing";

/** Where the processes of one mesh connect, and their heartbeat. */
export interface MeshPlace {
  servers: string | string[];
  prefix: string;
  heartbeatMs: number;
}

export interface AgentProcessOptions {
  /** @default "svc" */
  service?: string;
  /** @default 100 */
  weight?: number;
  /** How long `work` takes. @default 0 */
  delayMs?: number;
  /** More environment (MESH_JWKS, MESH_TOKEN, …). */
  env?: Record<string, string>;
  /** Bound on the start. @default 20000 */
  timeoutMs?: number;
}

export interface AgentProcess {
  readonly id: string;
  readonly record: InstanceRecord;
  readonly process: TestProcess;
  /** SIGKILL, then the exit. */
  kill(): Promise<void>;
  /** SIGTERM (the agent drains), then the exit code, bounded. */
  stop(timeoutMs?: number): Promise<number | null>;
}

export interface RegistryProcessOptions {
  leaseMs?: number;
  heartbeatTimeoutMs?: number;
  replicas?: number;
  /** Serve /metrics etc. on a free port. @default false */
  http?: boolean;
  jwks?: string;
  env?: Record<string, string>;
  /** @default 20000 */
  timeoutMs?: number;
}

export interface RegistryProcess {
  /** The registry id (the `id` in the leader lease). */
  readonly id: string;
  /** Whether it led right after starting. */
  readonly leaderAtStart: boolean;
  readonly httpPort: number | undefined;
  readonly process: TestProcess;
  kill(): Promise<void>;
  stop(timeoutMs?: number): Promise<number | null>;
}

/** What `<prefix>.test.probe.<id>` answers. */
export interface AgentProbe {
  id: string;
  /** Its current presence record. */
  record: InstanceRecord;
  rss: number;
  heapUsed: number;
  stats: AgentStats;
  calls: number;
  server: string | undefined;
}

export declare const AGENT_SCRIPT: URL;
export declare const CLI: string;
export declare function startAgentProcess(
  mesh: MeshPlace,
  options?: AgentProcessOptions,
): Promise<AgentProcess>;
export declare function startRegistryProcess(
  mesh: MeshPlace,
  options?: RegistryProcessOptions,
): Promise<RegistryProcess>;
export declare function rssOf(pid: number | undefined): number | undefined;
export declare function probeAgent(
  nc: NatsConnection,
  prefix: string,
  id: string,
  timeoutMs?: number,
): Promise<AgentProbe>;
export declare function seenBy(
  nc: NatsConnection,
  prefix: string,
  id: string,
  numbers: number[],
  timeoutMs?: number,
): Promise<number[]>;
