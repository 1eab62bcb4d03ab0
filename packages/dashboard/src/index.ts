/**
 * The natsmesh dashboard: a live web page of a mesh's services and instances (from presence)
 * and their traffic (request rate, error rate, p50/p99 latency, gathered from the agents'
 * `$SRV.STATS` over NATS), updated by server-sent events. Hosts mount it: the registry on its
 * HTTP port, `natsmesh dashboard` on its own.
 *
 * @module
 */

export type { InstanceRecord } from "@natsmesh/protocol";
export type { TokenSource } from "@natsmesh/protocol/internal";
export {
  createDashboard,
  type Dashboard,
  type DashboardState,
  type FeedEntry,
  type NatsState,
  type ServiceTraffic,
  type StatsEvent,
  type StatsState,
} from "./dashboard.js";
export {
  DASHBOARD_DEFAULTS,
  type DashboardLogger,
  type DashboardOptions,
  type DashboardSettings,
} from "./options.js";
export { PresenceFeed } from "./presence-feed.js";
export type { PresenceChange, PresenceSource } from "./presence-source.js";
export {
  type DashboardServer,
  type DashboardServerOptions,
  dashboardUrl,
  serveDashboard,
} from "./server.js";
export type { InstanceRate, ServicePoint } from "./traffic.js";
