import { type ChildProcess, spawnSync } from "node:child_process";
import { rmSync } from "node:fs";

// Test workers end in many ways (normal exit, a failed hook, Ctrl-C, the runner's SIGTERM).
// Whatever the way, no nats-server may outlive the worker, and temporary store
// directories that nobody disposed of should not pile up in the temp dir.
const children = new Set<ChildProcess>();
const containers = new Set<string>();
const dirs = new Set<string>();
/** Bound on removing leftover containers while this process exits. */
const CONTAINER_REMOVE_TIMEOUT_MS = 10_000;
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
let installed = false;

/** Kills `child` with SIGKILL if it is still running when this process exits. */
export function trackChild(child: ChildProcess): void {
  install();
  children.add(child);
  child.once("exit", () => children.delete(child));
}

/**
 * Removes container `id` (with the docker command, SIGKILL first) if it still exists when this
 * process exits, unless {@link untrackContainer} was called first. Testcontainers' own reaper
 * does the same where its image can be pulled; this one needs only the docker command.
 */
export function trackContainer(id: string): void {
  install();
  containers.add(id);
}

/** Forgets container `id`, once it has been removed in an orderly way. */
export function untrackContainer(id: string): void {
  containers.delete(id);
}

/** Removes `dir` when this process exits, unless {@link untrackDir} was called first. */
export function trackDir(dir: string): void {
  install();
  dirs.add(dir);
}

/** Forgets `dir`, once it has been removed in an orderly way. */
export function untrackDir(dir: string): void {
  dirs.delete(dir);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.once("exit", cleanup);
  for (const signal of SIGNALS) {
    const onSignal = (): void => {
      cleanup();
      process.removeListener(signal, onSignal);
      // Re-raise so the default action (terminate) happens, unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function cleanup(): void {
  for (const child of children) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  children.clear();
  if (containers.size > 0) {
    // Synchronous: an exit handler cannot wait for anything else.
    spawnSync("docker", ["rm", "--force", ...containers], {
      stdio: "ignore",
      timeout: CONTAINER_REMOVE_TIMEOUT_MS,
    });
    containers.clear();
  }
  for (const dir of dirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort at exit
    }
  }
  dirs.clear();
}
