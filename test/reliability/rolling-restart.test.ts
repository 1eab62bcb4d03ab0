import { connectMesh, type Mesh } from "@natsmesh/sdk";
import {
  cleanup,
  killAllProcesses,
  type NatsServer,
  startNatsServer,
  uniquePrefix,
  waitUntil,
} from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AgentProcess,
  type MeshPlace,
  startAgentProcess,
  startRegistryProcess,
} from "./lib/mesh-processes.mjs";
import { CallLog } from "./lib/outcomes.js";
import { startLoad } from "./lib/paced-load.mjs";

// Scenario 2: every agent of a service is drained (SIGTERM) and replaced by a new process, one
// after the other, while callers keep up a load of weighted and queue calls, idempotent or not.
// Not one call may fail: a draining agent finishes what it runs, refuses what it did not start
// (`UNAVAILABLE`, retried elsewhere), and announces itself draining so direct calls go elsewhere.

const HEARTBEAT_MS = 500;
const RATE = 1200;
const TIMEOUT_MS = 2000;
const DURATION_MS = 12_000;

let server: NatsServer;
let place: MeshPlace;
let mesh: Mesh;

beforeAll(async () => {
  server = await startNatsServer();
  place = { servers: server.url, prefix: uniquePrefix("rroll"), heartbeatMs: HEARTBEAT_MS };
  await startRegistryProcess(place, { heartbeatTimeoutMs: 3 * HEARTBEAT_MS });
  mesh = await connectMesh({
    servers: server.url,
    prefix: place.prefix,
    timeoutMs: TIMEOUT_MS,
    retries: 2,
  });
});

afterAll(async () => {
  await killAllProcesses();
  await cleanup(server, mesh);
});

/** Waits until the SDK's view holds exactly `agents`, all ready. */
async function visible(agents: readonly AgentProcess[]): Promise<void> {
  const ids = agents
    .map((a) => a.id)
    .sort()
    .join();
  const shown = () =>
    mesh
      .instances("svc")
      .filter((r) => r.status === "ready")
      .map((r) => r.id)
      .sort()
      .join() === ids;
  if (!(await waitUntil(shown, { timeoutMs: 15_000 }))) {
    throw new Error(`presence never showed exactly ${ids}`);
  }
}

describe("rolling restart under load", () => {
  it("drains and replaces every agent in turn without one failed call", async () => {
    const agents: AgentProcess[] = [];
    for (let i = 0; i < 3; i++) agents.push(await startAgentProcess(place, { delayMs: 2 }));
    await visible(agents);

    const log = new CallLog();
    const strategy = (n: number) => (n % 4 < 2 ? "weighted" : "queue");
    const load = startLoad({
      rate: RATE,
      durationMs: DURATION_MS,
      maxInflight: 512,
      call: (n) =>
        mesh.request("svc", "work", { n }, { balance: strategy(n), idempotent: n % 2 === 0 }),
      onOutcome: log.record,
    });
    const restarts: number[] = [];
    try {
      // A restart every 3 s of calls, from the second second on.
      for (const [i, old] of [...agents].entries()) {
        const due = RATE * (2 + 3 * i);
        expect(await waitUntil(() => load.settled >= due, { timeoutMs: 15_000 })).toBe(true);
        const begin = performance.now();
        expect(await old.stop()).toBe(0);
        agents.splice(agents.indexOf(old), 1, await startAgentProcess(place, { delayMs: 2 }));
        await visible(agents);
        restarts.push(performance.now() - begin);
      }
    } catch (err) {
      await load.stop();
      throw err;
    }
    const summary = await load.done;
    console.info(
      `[reliability] rolling restart: ${summary.started} calls in ` +
        `${(summary.elapsedMs / 1000).toFixed(1)} s (${Math.round(summary.rate)}/s), ` +
        `${summary.skipped} skipped, ${log.failed.length} failed ${JSON.stringify(log.codes())}; ` +
        `each restart (drain, start, visible) ${restarts.map((ms) => ms.toFixed(0)).join(", ")} ms; ` +
        `longest call ${log.longest()} ms`,
    );
    expect(summary.skipped).toBe(0);
    expect(summary.settled).toBe(summary.started);
    expect(summary.elapsedMs).toBeGreaterThanOrEqual(DURATION_MS);
    expect(summary.rate).toBeGreaterThanOrEqual(1000);
    expect(log.failed).toEqual([]);
    // Every new agent took calls.
    for (const a of agents) expect(log.calls.some((c) => c.value === a.id)).toBe(true);
  });
});
