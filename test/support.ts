import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import type { InstanceRecord } from "@natsmesh/protocol";

/** An agent running in a child process (test/fixtures/agent.mjs). */
export interface AgentProcess {
  child: ChildProcess;
  record: InstanceRecord;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
}

/** Starts test/fixtures/agent.mjs and waits (bounded) for the record it prints when serving. */
export async function spawnAgent(
  env: Record<string, string>,
  timeoutMs = 10_000,
): Promise<AgentProcess> {
  const child = spawn(
    process.execPath,
    [new URL("./fixtures/agent.mjs", import.meta.url).pathname],
    {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const lines = createInterface({ input: child.stdout! });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    const [line] = (await Promise.race([
      once(lines, "line"),
      once(child, "exit").then(() => {
        throw new Error("agent process exited before it was serving");
      }),
    ])) as [string];
    return {
      child,
      record: JSON.parse(line) as InstanceRecord,
      async kill() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill("SIGKILL");
        await once(child, "exit");
      },
    };
  } finally {
    clearTimeout(timer);
  }
}
