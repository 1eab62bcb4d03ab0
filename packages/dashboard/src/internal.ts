/**
 * What the natsmesh hosts of the dashboard (the registry, the CLI) share with it and users do
 * not need: checking dashboard settings ahead of starting. Not a stable API.
 *
 * @module
 */

export { type ResolvedDashboardSettings, resolveDashboardSettings } from "./options.js";
