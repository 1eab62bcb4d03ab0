/**
 * What the other natsmesh packages (the CLI) share with the SDK and users do not need: the
 * presence watcher behind the SDK's cache. Not a stable API.
 *
 * @module
 */

export { type ReadPresenceOptions, readPresence } from "./presence-snapshot.js";
export { type PresenceEntry, PresenceView, type PresenceWatchEvent } from "./presence-view.js";
export {
  PRESENCE_RETRY_MS,
  type PresenceWatch,
  type PresenceWatchOptions,
  type PresenceWatchStatus,
  watchPresence,
} from "./presence-watch.js";
