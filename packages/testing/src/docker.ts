import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { withTimeout } from "@natsmesh/protocol/internal";
import { NatsTestingError } from "./errors.js";
import type { ResolvedNatsServerOptions } from "./options.js";

/** Bound on asking Testcontainers whether the engine answers. */
const PROBE_TIMEOUT_MS = 10_000;

let reachable: Promise<string | undefined> | undefined;

/** Whether `options` should run in a container rather than as a local process. */
export function useContainer(options: ResolvedNatsServerOptions): boolean {
  if (options.runtime !== "auto") return options.runtime === "container";
  // Containers are opt-in: the local binary is what CI and most developers have.
  return !options.binaryGiven && process.env.NATSMESH_TEST_DOCKER === "1";
}

/**
 * Resolves once a Docker engine answers (asked once per process); fails with
 * `DOCKER_UNAVAILABLE`, saying why and what to do, when none does. A cheap look for a socket or
 * `DOCKER_HOST` comes first, so machines without Docker never load Testcontainers.
 */
export async function requireDocker(): Promise<void> {
  reachable ??= probe();
  const why = await reachable;
  if (why !== undefined) {
    throw new NatsTestingError(
      "DOCKER_UNAVAILABLE",
      `The container runtime needs a Docker engine, and ${why}. Start one and point DOCKER_HOST ` +
        "at it (test/docker/engine.sh start prints the settings), or use the process runtime " +
        '(unset NATSMESH_TEST_DOCKER, or pass runtime: "process").',
    );
  }
}

/** Undefined when the engine answers, else why not. */
async function probe(): Promise<string | undefined> {
  const sockets = ["/var/run/docker.sock", join(homedir(), ".docker", "run", "docker.sock")];
  if (process.env.DOCKER_HOST === undefined && !sockets.some((s) => existsSync(s))) {
    return `DOCKER_HOST is unset and there is no socket at ${sockets.join(" or ")}`;
  }
  try {
    const { getContainerRuntimeClient } = await import("testcontainers");
    await withTimeout(getContainerRuntimeClient(), PROBE_TIMEOUT_MS, "asking the engine");
    return undefined;
  } catch (err) {
    const where = process.env.DOCKER_HOST ?? "the default socket";
    return `none answers at ${where} (${err instanceof Error ? err.message : String(err)})`;
  }
}
