/**
 * The natsmesh agent: hosts one service's methods on NATS, announces its presence, answers
 * NATS micro discovery and drains on stop.
 *
 * @module
 */

export {
  type EventMode,
  type EventSubscription,
  type InstanceRecord,
  type InstanceStatus,
  MeshError,
  type NatsCredentials,
} from "@natsmesh/protocol";
export type { EventStreamOptions, TokenSource } from "@natsmesh/protocol/internal";
export { natsmeshMetricProducer } from "@natsmesh/protocol/internal";
export { type Agent, type AgentUpdate, startAgent } from "./agent.js";
export type { AgentStats } from "./agent-stats.js";
export type { AgentAuthOptions } from "./auth.js";
export type { CallerClaims, RequestContext } from "./call.js";
export type { EventContext, EventInfo } from "./events/event-context.js";
export {
  EVENT_DEFAULTS,
  type EventDefinition,
  type EventHandler,
  type StartFrom,
} from "./events/event-options.js";
export {
  AGENT_DEFAULTS,
  type AgentMetricsOptions,
  type AgentOptions,
  type Handler,
  type MethodDefinition,
  type NestedEmitOptions,
  type NestedMesh,
  type NestedRequestOptions,
} from "./options.js";
