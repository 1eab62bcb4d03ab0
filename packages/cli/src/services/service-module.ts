import { statSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { AgentOptions } from "@natsmesh/agent";
import { isValidName } from "@natsmesh/protocol";
import { errorText, inputError } from "../errors.js";

/**
 * What a service module's default export describes: the service an agent hosts. The rest of
 * an agent's options (where, how many, with which keys) come from flags and the environment.
 */
export type ServiceModule = Pick<
  AgentOptions,
  "service" | "version" | "description" | "methods" | "events" | "metadata"
>;

const KEYS: readonly string[] = [
  "service",
  "version",
  "description",
  "methods",
  "events",
  "metadata",
] satisfies (keyof ServiceModule)[];

const SHAPE = "export default { service, version?, methods?, events? }";

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}

/** Why a module's default export is not a service description, or `undefined` when it is. */
function shapeProblem(exported: Record<string, unknown>): string | undefined {
  const unknown = Object.keys(exported).filter((k) => !KEYS.includes(k));
  if (unknown.length > 0) {
    return `unknown key${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} (a module may set ${KEYS.join(", ")})`;
  }
  if (typeof exported.service !== "string" || !isValidName(exported.service)) {
    return `"service" must be a name of 1-64 characters of [A-Za-z0-9_-], got ${JSON.stringify(exported.service) ?? "nothing"}`;
  }
  for (const key of ["version", "description"] as const) {
    if (exported[key] !== undefined && typeof exported[key] !== "string") {
      return `"${key}" must be a string, got ${describe(exported[key])}`;
    }
  }
  for (const key of ["methods", "events", "metadata"] as const) {
    if (exported[key] !== undefined && !isPlainObject(exported[key])) {
      return `"${key}" must be an object, got ${describe(exported[key])}`;
    }
  }
  const methods = Object.keys((exported.methods as object | undefined) ?? {}).length;
  const events = Object.keys((exported.events as object | undefined) ?? {}).length;
  if (methods + events === 0) return 'it needs at least one entry in "methods" or "events"';
  return undefined;
}

/**
 * Loads the service module at `path` (relative to the working directory): an ES module whose
 * default export describes one service. A missing file, a module that fails to load and an
 * export of the wrong shape are input errors (exit 2) that say which and what to fix.
 */
export async function loadServiceModule(path: string): Promise<ServiceModule> {
  const file = resolve(path);
  try {
    if (!statSync(file).isFile()) throw inputError(`the service module ${path} is not a file`);
  } catch (err) {
    if ((err as { code?: unknown }).code === "ENOENT") {
      throw inputError(`the service module ${path} does not exist (looked for ${file})`, err);
    }
    throw err;
  }
  let loaded: { default?: unknown };
  try {
    loaded = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (err) {
    throw inputError(`the service module ${path} failed to load: ${errorText(err)}`, err);
  }
  const exported = loaded.default;
  if (exported === undefined) {
    throw inputError(`the service module ${path} has no default export; write ${SHAPE}`);
  }
  if (!isPlainObject(exported)) {
    throw inputError(
      `the default export of ${path} is ${describe(exported)}, not an object; write ${SHAPE}`,
    );
  }
  const problem = shapeProblem(exported);
  if (problem !== undefined) {
    throw inputError(`the default export of ${path} is not a service: ${problem}`);
  }
  return exported as ServiceModule;
}
