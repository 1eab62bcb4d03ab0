import { Kvm } from "@nats-io/kv";
import { presenceBucket, presenceKey } from "@natsmesh/protocol";
import type { Balance } from "@natsmesh/sdk";
import { waitUntil } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { record } from "../../packages/registry/test/helpers.js";
import {
  type LoadedMesh,
  startLoadedMesh,
  stopLoadedMesh,
  waitVisible,
} from "./lib/loaded-mesh.js";
import { type AgentProcess, seenBy, startAgentProcess } from "./lib/mesh-processes.mjs";
import { CallLog } from "./lib/outcomes.js";
import { startLoad } from "./lib/paced-load.mjs";

// Scenario 1: one of three agent processes is SIGKILLed while callers send more than 1,000
// calls/s for more than 10 s, once with `weighted` and once with `queue` balancing. Half the
// calls are idempotent: none of them may fail. A non-idempotent call may fail only when it had
// reached the killed instance (no survivor ran it), and then only within its deadline. The
// registry evicts the killed instance within the heartbeat timeout + 1 s.

const HEARTBEAT_MS = 500;
const HEARTBEAT_TIMEOUT_MS = 3 * HEARTBEAT_MS;
const RATE = 1200;
const DURATION_MS = 10_500;
const TIMEOUT_MS = 2000;
/** Allowance for the SDK's shared 10 ms deadline timer and a loaded machine. */
const LATE_MS = 250;

let loaded: LoadedMesh;
const agents: AgentProcess[] = [];
/** Call numbers of each run start here, so agents that live through runs never mix them up. */
let firstCall = 0;

beforeAll(async () => {
  loaded = await startLoadedMesh({
    tag: "rkill",
    heartbeatMs: HEARTBEAT_MS,
    heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
    timeoutMs: TIMEOUT_MS,
  });
});

afterAll(() => stopLoadedMesh(loaded));

/** Tops the service up to three agents, all ready in the SDK's presence view. */
async function threeAgents(): Promise<AgentProcess[]> {
  while (agents.length < 3) agents.push(await startAgentProcess(loaded.place, { delayMs: 2 }));
  await waitVisible(loaded.mesh, agents);
  return [...agents];
}

describe.each<Balance>(["weighted", "queue"])("agent SIGKILL under load (%s)", (balance) => {
  it("fails no idempotent call, and only calls the killed agent had", async () => {
    const [victim, ...survivors] = await threeAgents();
    const { place, mesh } = loaded;
    const kv = await new Kvm(mesh.connection).open(presenceBucket(place.prefix));
    const changes = await record(kv);
    const log = new CallLog();
    const idempotent = (n: number) => n % 2 === 0;
    const base = firstCall;
    firstCall += 10_000_000;
    const load = startLoad({
      rate: RATE,
      durationMs: DURATION_MS,
      maxInflight: 512,
      call: (n) =>
        mesh.request("svc", "work", { n: base + n }, { balance, idempotent: idempotent(n) }),
      onOutcome: log.record,
    });
    try {
      // A third of the way in, the victim dies.
      expect(await waitUntil(() => load.settled >= RATE * 3, { timeoutMs: 15_000 })).toBe(true);
      const killing = performance.now();
      await victim!.kill();
      const exitedAt = Date.now();
      agents.splice(agents.indexOf(victim!), 1);
      const summary = await load.done;

      const key = presenceKey("svc", victim!.id);
      const evicted = await waitUntil(
        () => changes.events.some((e) => e.key === key && e.op !== "PUT"),
        { timeoutMs: HEARTBEAT_TIMEOUT_MS + 5000 },
      );
      const evictionMs = changes.events.find((e) => e.key === key && e.op !== "PUT")!.at - killing;

      const failed = log.failed;
      const failedIdempotent = failed.filter((c) => idempotent(c.n));
      const failedOther = failed.filter((c) => !idempotent(c.n));
      const ranBySurvivors = (
        await Promise.all(
          survivors.map((a) =>
            seenBy(
              mesh.connection,
              place.prefix,
              a.id,
              failedOther.map((c) => base + c.n),
            ),
          ),
        )
      ).flat();
      const servedByVictim = log.calls.filter((c) => c.ok && c.value === victim!.id);
      console.info(
        `[reliability] agent SIGKILL (${balance}): ${summary.started} calls in ` +
          `${(summary.elapsedMs / 1000).toFixed(1)} s (${Math.round(summary.rate)}/s), ` +
          `${summary.skipped} skipped; failed: ${failedIdempotent.length} idempotent, ` +
          `${failedOther.length} non-idempotent ${JSON.stringify(log.codes())}; ` +
          `longest call ${log.longest()} ms; eviction ${evictionMs.toFixed(0)} ms after SIGKILL`,
      );

      expect(summary.elapsedMs).toBeGreaterThanOrEqual(10_000);
      expect(summary.rate).toBeGreaterThanOrEqual(1000);
      expect(summary.skipped).toBe(0);
      expect(summary.settled).toBe(summary.started);
      expect(failedIdempotent).toEqual([]);
      for (const c of failedOther) {
        // It was sent before the victim was gone, and it ended within its own deadline.
        expect(c.start).toBeLessThanOrEqual(exitedAt + LATE_MS);
        expect(c.end - c.start).toBeLessThanOrEqual(TIMEOUT_MS + LATE_MS);
        expect(c.code).toBe("DEADLINE_EXCEEDED");
      }
      // No survivor ran a failed call: each one had been delivered to the killed instance.
      expect(ranBySurvivors).toEqual([]);
      expect(log.longest()).toBeLessThanOrEqual(TIMEOUT_MS + LATE_MS);
      // The victim did take its share until it died, and nothing after.
      expect(servedByVictim.length).toBeGreaterThan(0);
      expect(servedByVictim.every((c) => c.start <= exitedAt)).toBe(true);
      expect(evicted).toBe(true);
      expect(evictionMs).toBeLessThanOrEqual(HEARTBEAT_TIMEOUT_MS + 1000);
    } finally {
      changes.stop();
      await load.stop();
    }
  }, 90_000);
});
