/**
 * The natsmesh registry: turns presence announcements into the `<P>_presence` KV bucket,
 * writing only on change, evicts instances whose heartbeats stop, and lets one of several
 * registries lead at a time through a lease in `<P>_registry`.
 *
 * @module
 */

export {
  type InstanceRecord,
  MeshError,
  type NatsCredentials,
  type PresenceQuotas,
} from "@natsmesh/protocol";
export { LEADER_KEY, type LeaseRecord } from "./leader-lease.js";
export {
  REGISTRY_DEFAULTS,
  type RegistryAuthOptions,
  type RegistryDashboardOptions,
  type RegistryHttpOptions,
  type RegistryOptions,
} from "./options.js";
export { type Registry, startRegistry } from "./registry.js";
export type { RegistryStats } from "./stats.js";
