import { monitorEventLoopDelay } from "node:perf_hooks";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { presenceBucket } from "@natsmesh/protocol";
import { delay } from "@natsmesh/protocol/internal";
import { waitUntil } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  idsOf,
  type LoadedMesh,
  startLoadedMesh,
  stopLoadedMesh,
  viewIds,
} from "./lib/loaded-mesh.js";
import { type AgentProcess, startAgentProcess } from "./lib/mesh-processes.mjs";
import { CallLog } from "./lib/outcomes.js";
import { mixedCall, startLoad } from "./lib/paced-load.mjs";

// Scenario 3: the nats-server under a mesh restarts (graceful stop, 1 s down, then start on the
// same port and store) while callers send 500 calls/s, weighted and queue. While it is down,
// one agent dies without a word. No call outlives its deadline; once the server is back, calls
// succeed within 2 s; presence (the bucket, and the SDK's view) holds exactly the live agents
// within 2 × the heartbeat timeout.

const HEARTBEAT_MS = 500;
const HEARTBEAT_TIMEOUT_MS = 3 * HEARTBEAT_MS;
const RATE = 500;
const TIMEOUT_MS = 2000;
const LATE_MS = 250;
const RECOVERY_MS = 2000;
/** How long the server stays down: half a call's timeout, so calls wait through it. */
const OUTAGE_MS = 1000;

let loaded: LoadedMesh;

beforeAll(async () => {
  loaded = await startLoadedMesh({
    tag: "rnats",
    heartbeatMs: HEARTBEAT_MS,
    heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
    timeoutMs: TIMEOUT_MS,
  });
});

afterAll(() => stopLoadedMesh(loaded));

/** The ids in `<P>_presence`, read by a connection of its own (so nothing is cached). */
async function bucketIds(): Promise<string> {
  const nc = await connect({ servers: loaded.server.url });
  try {
    const kv = await new Kvm(nc).open(presenceBucket(loaded.place.prefix));
    const ids: string[] = [];
    for await (const key of await kv.keys()) ids.push(key.split(".")[1]!);
    return ids.sort().join();
  } finally {
    await nc.close();
  }
}

describe("nats-server restart under load", () => {
  it("keeps every call within its deadline, recovers within 2 s, and presence converges", async () => {
    const { server, place, mesh } = loaded;
    const agents: AgentProcess[] = [];
    for (let i = 0; i < 3; i++) agents.push(await startAgentProcess(place, { delayMs: 2 }));
    const all = idsOf(agents);
    expect(await waitUntil(() => viewIds(mesh) === all, { timeoutMs: 15_000 })).toBe(true);

    const log = new CallLog();
    // How late this process's own timers ran: a call cannot end sooner than its timer runs.
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const load = startLoad({
      rate: RATE,
      durationMs: 60_000,
      // Calls wait for the reconnect: room for every call of the outage plus the deadline.
      maxInflight: 10_000,
      call: (n) => mixedCall(mesh, n),
      onOutcome: log.record,
    });
    let back = 0;
    let converged = 0;
    try {
      expect(await waitUntil(() => load.settled >= RATE * 2, { timeoutMs: 10_000 })).toBe(true);
      const down = Date.now();
      await server.stop();
      // Dies while nobody can hear it: no `down`, no heartbeat timeout seen by the registry yet.
      const [dead] = agents.splice(0, 1);
      await dead!.kill();
      await delay(OUTAGE_MS - (Date.now() - down));
      await server.restart();
      back = Date.now();
      const live = idsOf(agents);
      const convergedInTime = await waitUntil(
        async () => viewIds(mesh) === live && (await bucketIds()) === live,
        { timeoutMs: 4 * HEARTBEAT_TIMEOUT_MS, intervalMs: 100 },
      );
      converged = Date.now() - back;
      expect(convergedInTime).toBe(true);
      // Calls go on for a while with the server back.
      expect(await waitUntil(() => Date.now() - back >= 5000, { timeoutMs: 10_000 })).toBe(true);
      console.info(`[reliability] nats-server down for ${back - down} ms`);
    } finally {
      await load.stop();
    }
    const summary = await load.done;
    loopDelay.disable();
    const maxLoopDelay = Math.round(loopDelay.max / 1e6);
    const firstOk = Math.min(...log.calls.filter((c) => c.ok && c.end >= back).map((c) => c.end));
    const lateFailures = log.failed.filter((c) => c.start >= back + RECOVERY_MS);
    const startedAfterReturn = log.failed.filter((c) => c.start >= back).length;
    console.info(
      `[reliability] nats-server restart: ${summary.started} calls ` +
        `(${Math.round(summary.rate)}/s), ${log.failed.length} failed ${JSON.stringify(log.codes())}; ` +
        `${startedAfterReturn} of them started after the server's return; ` +
        `first success ${firstOk - back} ms after the return; longest call ` +
        `${log.longest()} ms (this process's event loop lagged up to ${maxLoopDelay} ms); presence ` +
        `converged ${converged} ms after the return`,
    );
    expect(summary.skipped).toBe(0);
    expect(summary.settled).toBe(summary.started);
    // A deadline is a timer in this process: it cannot fire sooner than the event loop gets to it.
    expect(log.longest()).toBeLessThanOrEqual(TIMEOUT_MS + LATE_MS + maxLoopDelay);
    // Calls waiting through the outage reach the agents at once when it ends: some of them find
    // every slot taken (OVERLOADED, retried) and some run out of time.
    for (const c of log.failed) {
      expect(["UNAVAILABLE", "DEADLINE_EXCEEDED", "OVERLOADED"]).toContain(c.code);
    }
    expect(firstOk - back).toBeLessThanOrEqual(RECOVERY_MS);
    expect(lateFailures).toEqual([]);
    expect(converged).toBeLessThanOrEqual(2 * HEARTBEAT_TIMEOUT_MS);
  });
});
