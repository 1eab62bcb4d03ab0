/**
 * The natsmesh SDK: request/reply calls to mesh services with balancing, retries, deadlines
 * and cancellation over one multiplexed reply subscription per connection, and a presence view
 * fed by the registry's KV bucket.
 *
 * @module
 */

export {
  type CodecName,
  type InstanceRecord,
  MeshError,
  type MeshErrorCode,
  type NatsCredentials,
  type PresenceQuotas,
} from "@natsmesh/protocol";
export type { EventStreamOptions, TokenSource } from "@natsmesh/protocol/internal";
export { natsmeshMetricProducer } from "@natsmesh/protocol/internal";
export { Balance } from "./balancer.js";
export type { BroadcastOptions, EmitOptions, EmitResult } from "./events/emit-options.js";
export type { InstanceFilter } from "./filters.js";
export { connectMesh, type Mesh, type WatchOptions } from "./mesh.js";
export { MESH_DEFAULTS, type MeshOptions, type RequestOptions } from "./options.js";
export type { PresenceEvent, PresenceStats } from "./presence-cache.js";
export type { PresenceOptions } from "./presence-options.js";
export type { ReadyOptions } from "./presence-ready.js";
