import { Kvm } from "@nats-io/kv";
import { presenceBucket, presenceKey, registryBucket } from "@natsmesh/protocol";
import { LEADER_KEY, type LeaseRecord } from "@natsmesh/registry";
import { cleanup, killAllProcesses, setup, type TestSetup, waitUntil } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { record } from "../../packages/registry/test/helpers.js";
import {
  type AgentProcess,
  type MeshPlace,
  type RegistryProcess,
  startAgentProcess,
  startRegistryProcess,
} from "./lib/mesh-processes.mjs";

// Scenario 5: the leading registry gets SIGKILL, so its lease is never released, while a
// follower runs. With the default settings (lease 5 s, heartbeat 1 s, heartbeat timeout 3 s):
// the follower takes the lease within the lease time of the kill; within one heartbeat timeout
// more, presence is right again: no live instance was ever deleted, an instance that died while
// nobody led is gone, and one that started meanwhile is there.

const LEASE_MS = 5000;
const HEARTBEAT_MS = 1000;
const HEARTBEAT_TIMEOUT_MS = 3 * HEARTBEAT_MS;
/** Past the lease: the watch delivering the renewal, one lease request, a loaded machine. */
const TAKEOVER_SLACK_MS = 300;
const ROUNDS = 2;

let t: TestSetup;
let place: MeshPlace;

beforeAll(async () => {
  t = await setup({ tag: "rfail" });
  place = { servers: t.server.url, prefix: t.prefix, heartbeatMs: HEARTBEAT_MS };
});

afterAll(async () => {
  await killAllProcesses();
  await cleanup(t);
});

function registry(): Promise<RegistryProcess> {
  return startRegistryProcess(place, {
    leaseMs: LEASE_MS,
    heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
  });
}

describe("registry leader SIGKILL with a follower", () => {
  it("hands the lead over within the lease, and presence is right one heartbeat timeout later", async () => {
    const kvm = new Kvm(t.nc);
    let leader = await registry();
    expect(leader.leaderAtStart).toBe(true);
    const lease = await kvm.open(registryBucket(t.prefix));
    const presence = await kvm.open(presenceBucket(t.prefix));
    const live: AgentProcess[] = [await startAgentProcess(place), await startAgentProcess(place)];
    const keys = async () => {
      const out: string[] = [];
      for await (const k of await presence.keys()) out.push(k);
      return out.sort().join();
    };
    const expected = (...more: string[]) =>
      [...live.map((a) => presenceKey("svc", a.id)), ...more].sort().join();

    for (let round = 1; round <= ROUNDS; round++) {
      const follower = await registry();
      expect(follower.leaderAtStart).toBe(false);
      const doomed = await startAgentProcess(place);
      const stale = presenceKey("svc", doomed.id);
      expect(
        await waitUntil(async () => (await keys()) === expected(stale), {
          timeoutMs: 10_000,
        }),
      ).toBe(true);

      const changes = await record(presence);
      const holders = await record(lease);
      // SIGKILL right after a renewal: the whole lease has to run out before anyone may lead.
      const renewed = () =>
        holders.events.some(
          (e) => e.key === LEADER_KEY && e.op === "PUT" && holderId(e.value) === leader.id,
        );
      expect(await waitUntil(renewed, { timeoutMs: LEASE_MS, intervalMs: 5 })).toBe(true);
      await leader.kill();
      const killed = performance.now();

      // While nobody leads, one instance dies and another starts.
      await doomed.kill();
      live.push(await startAgentProcess(place));

      const takenOver = await waitUntil(
        () => holders.events.some((e) => e.op === "PUT" && holderId(e.value) === follower.id),
        { timeoutMs: LEASE_MS + HEARTBEAT_TIMEOUT_MS + 5000 },
      );
      const takeoverMs =
        holders.events.find((e) => e.op === "PUT" && holderId(e.value) === follower.id)!.at -
        killed;
      const right = await waitUntil(async () => (await keys()) === expected(), {
        timeoutMs: LEASE_MS + 2 * HEARTBEAT_TIMEOUT_MS + 5000,
        intervalMs: 100,
      });
      const rightMs = performance.now() - killed;
      changes.stop();
      holders.stop();
      console.info(
        `[reliability] registry leader SIGKILL (round ${round}): lease taken over ` +
          `${takeoverMs.toFixed(0)} ms after the kill (lease ${LEASE_MS} ms); presence right ` +
          `${rightMs.toFixed(0)} ms after the kill (heartbeat timeout ${HEARTBEAT_TIMEOUT_MS} ms)`,
      );

      expect(takenOver).toBe(true);
      expect(takeoverMs).toBeLessThanOrEqual(LEASE_MS + TAKEOVER_SLACK_MS);
      expect(right).toBe(true);
      expect(rightMs).toBeLessThanOrEqual(LEASE_MS + HEARTBEAT_TIMEOUT_MS + 1000);
      // No live instance was deleted at any time; the stale one was.
      const liveKeys = new Set(live.map((a) => presenceKey("svc", a.id)));
      expect(changes.events.filter((e) => liveKeys.has(e.key) && e.op !== "PUT")).toEqual([]);
      expect(changes.events.some((e) => e.key === stale && e.op !== "PUT")).toBe(true);
      leader = follower;
    }
  });
});

function holderId(value: string): string | undefined {
  try {
    return (JSON.parse(value) as Partial<LeaseRecord>).id;
  } catch {
    return undefined;
  }
}
