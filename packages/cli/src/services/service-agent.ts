import type { NatsConnection } from "@nats-io/nats-core";
import {
  type Agent,
  type AgentAuthOptions,
  type AgentMetricsOptions,
  startAgent,
} from "@natsmesh/agent";
import type { JwksSource, TokenSource } from "@natsmesh/protocol/internal";
import type { Logger } from "pino";
import { errorText, failure, inputError } from "../errors.js";
import { lazyMesh } from "./nested-mesh.js";
import type { ServiceModule } from "./service-module.js";

/** How to run a service module: what the flags and the environment say. */
export interface ServiceAgentSettings {
  readonly connection: NatsConnection;
  readonly prefix: string;
  /** Overrides the module's own version. */
  readonly version?: string | undefined;
  readonly weight?: number | undefined;
  readonly zone?: string | undefined;
  readonly concurrency?: number | undefined;
  readonly heartbeatMs?: number | undefined;
  readonly drainTimeoutMs?: number | undefined;
  /** The Prometheus endpoint, or `false` for none (the environment is not read again). */
  readonly metrics?: AgentMetricsOptions | false | undefined;
  /** Inbox prefixes of the callers the agent answers (else `MESH_INBOX_PREFIXES`, `_INBOX`). */
  readonly inboxPrefixes?: readonly string[] | undefined;
  /** Token checks on calls, or `false` for none. */
  readonly auth: AgentAuthOptions | false;
  /** The agent's own token: sent on presence, and on nested calls and emits. */
  readonly token: TokenSource | undefined;
  /**
   * The registries' public keys the nested mesh checks records against (else
   * `MESH_PRESENCE_KEYS`, else none).
   */
  readonly presenceKeys?: JwksSource | undefined;
  readonly logger: Logger;
}

/** A service module running as an agent, with the SDK mesh of its nested calls. */
export interface ServiceAgent {
  readonly agent: Agent;
  /** Drains the agent, then closes its nested mesh; idempotent. */
  stop(): Promise<void>;
}

/** Spreads `{ [key]: value }` only when `value` is set. */
function given<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/**
 * Starts an agent hosting the service `module` (loaded from `path`) on `settings.connection`,
 * which it leaves open. `ctx.mesh` is an SDK mesh on the same connection, opened when a handler
 * first uses it. A module the agent refuses (a method that is not a function, a bad event
 * pattern) is an input error naming `path`; anything else failing is a run-time failure.
 */
export async function startServiceAgent(
  module: ServiceModule,
  path: string,
  settings: ServiceAgentSettings,
): Promise<ServiceAgent> {
  const s = settings;
  const mesh = lazyMesh(s.connection, s.prefix, s.token, s.presenceKeys);
  let agent: Agent;
  try {
    agent = await startAgent({
      ...module,
      connection: s.connection,
      prefix: s.prefix,
      mesh,
      auth: s.auth,
      logger: s.logger,
      ...given("version", s.version),
      ...given("weight", s.weight),
      ...given("zone", s.zone),
      ...given("concurrency", s.concurrency),
      ...given("heartbeatMs", s.heartbeatMs),
      ...given("drainTimeoutMs", s.drainTimeoutMs),
      ...given("metrics", s.metrics),
      ...given("inboxPrefixes", s.inboxPrefixes),
      ...given("token", s.token),
    });
  } catch (err) {
    await mesh.close();
    // The settings were checked by their parsers: a TypeError is about what the module holds.
    if (err instanceof TypeError) {
      throw inputError(`the service module ${path} is refused: ${err.message}`, err);
    }
    throw failure(`the agent for ${module.service} did not start: ${errorText(err)}`, err);
  }
  let stopped: Promise<void> | undefined;
  return {
    agent,
    stop() {
      stopped ??= agent.stop().finally(() => mesh.close());
      return stopped;
    },
  };
}
