import { waitUntil } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type LoadedMesh,
  startLoadedMesh,
  stopLoadedMesh,
  waitVisible,
} from "./lib/loaded-mesh.js";
import { type AgentProcess, startAgentProcess } from "./lib/mesh-processes.mjs";
import { CallLog } from "./lib/outcomes.js";
import { mixedCall, startLoad } from "./lib/paced-load.mjs";

// Scenario 2: every agent of a service is drained (SIGTERM) and replaced by a new process, one
// after the other, while callers keep up a load of weighted and queue calls, idempotent or not.
// Not one call may fail: a draining agent finishes what it runs, refuses what it did not start
// (`UNAVAILABLE`, retried elsewhere), and announces itself draining so direct calls go elsewhere.

const HEARTBEAT_MS = 500;
const RATE = 1200;
const TIMEOUT_MS = 2000;
const DURATION_MS = 12_000;

let loaded: LoadedMesh;

beforeAll(async () => {
  loaded = await startLoadedMesh({
    tag: "rroll",
    heartbeatMs: HEARTBEAT_MS,
    heartbeatTimeoutMs: 3 * HEARTBEAT_MS,
    timeoutMs: TIMEOUT_MS,
  });
});

afterAll(() => stopLoadedMesh(loaded));

describe("rolling restart under load", () => {
  it("drains and replaces every agent in turn without one failed call", async () => {
    const { place, mesh } = loaded;
    const agents: AgentProcess[] = [];
    for (let i = 0; i < 3; i++) agents.push(await startAgentProcess(place, { delayMs: 2 }));
    await waitVisible(mesh, agents);

    const log = new CallLog();
    const load = startLoad({
      rate: RATE,
      durationMs: DURATION_MS,
      maxInflight: 512,
      call: (n) => mixedCall(mesh, n),
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
        await waitVisible(mesh, agents);
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
