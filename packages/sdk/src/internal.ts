/**
 * What the other natsmesh packages (the CLI) and the SDK's unit tests use and users do not
 * need: the presence watcher behind the SDK's cache, and the pure parts of a call (filters,
 * strategies, header rendering, retry decisions). Not a stable API.
 *
 * @module
 */

export { Balancer } from "./balancer.js";
export { candidates, checkVersionFilter, VersionMatcher } from "./filters.js";
export {
  checkPresenceKeysText,
  type LoadedPresenceKeys,
  loadPresenceKeys,
  PRESENCE_KEYS_VARIABLE,
  presenceKeysFromEnv,
} from "./presence-keys.js";
export { type ReadyWait, ReadyWaits, resolveReadyOptions } from "./presence-ready.js";
export { type ReadPresenceOptions, readPresence } from "./presence-snapshot.js";
export {
  type PresenceEntry,
  PresenceView,
  type PresenceViewOptions,
  type PresenceWatchEvent,
} from "./presence-view.js";
export type { PresenceWatchOptions, PresenceWatchStatus } from "./presence-watch.js";
export { PRESENCE_RETRY_MS, type PresenceWatch, watchPresence } from "./presence-watch.js";
export { QueueSubjects } from "./queue-subjects.js";
export { renderUserHeaders, requestHeaders } from "./request-headers.js";
export { backoffMs, type RetryDecision, type RetryState, retryDecision } from "./retry.js";
export { type Loads, loadScore, selectLeastLoaded } from "./strategies/least-loaded.js";
export { EWMA_ALPHA, type Load, LoadTable } from "./strategies/load-table.js";
export { type RandomSource, selectRandom } from "./strategies/random.js";
export { selectRoundRobin } from "./strategies/round-robin.js";
export { selectWeighted } from "./strategies/weighted.js";
export { MeshTokenLines, ownTokenLines, type TokenLines } from "./token-lines.js";
