import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { ResolvedNatsServerOptions } from "./options.js";

/** Bound on asking Testcontainers whether the engine answers. */
const PROBE_TIMEOUT_MS = 10_000;

let reachable: Promise<boolean> | undefined;

/** Whether `options` should run in a container rather than as a local process. */
export async function useContainer(options: ResolvedNatsServerOptions): Promise<boolean> {
  if (options.runtime !== "auto") return options.runtime === "container";
  // Containers are opt-in: the local binary is what CI and most developers have.
  return !options.binaryGiven && process.env.NATSMESH_TEST_DOCKER === "1";
}

/**
 * Whether a Docker engine answers, decided once per process. A cheap look for a socket or
 * `DOCKER_HOST` comes first, so machines without Docker never load Testcontainers.
 */
export function dockerReachable(): Promise<boolean> {
  reachable ??= probe();
  return reachable;
}

async function probe(): Promise<boolean> {
  const sockets = ["/var/run/docker.sock", join(homedir(), ".docker", "run", "docker.sock")];
  if (process.env.DOCKER_HOST === undefined && !sockets.some((s) => existsSync(s))) return false;
  let timer: NodeJS.Timeout | undefined;
  try {
    const { getContainerRuntimeClient } = await import("testcontainers");
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("timeout")), PROBE_TIMEOUT_MS);
    });
    await Promise.race([getContainerRuntimeClient(), timeout]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
