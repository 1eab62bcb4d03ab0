import { jetstreamManager } from "@nats-io/jetstream";
import { presenceBucket } from "@natsmesh/protocol";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import {
  cleanup,
  killAllProcesses,
  type NatsCluster,
  startNatsCluster,
  uniquePrefix,
  until,
} from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { idsOf, viewIds } from "./lib/loaded-mesh.js";
import {
  type AgentProcess,
  type MeshPlace,
  probeAgent,
  startAgentProcess,
  startRegistryProcess,
} from "./lib/mesh-processes.mjs";
import { CallLog } from "./lib/outcomes.js";
import { startLoad } from "./lib/paced-load.mjs";

// Scenario 4: a 3-node cluster with the buckets on three replicas, two registries, three agents
// and the SDK, all given every node. Under a steady load of idempotent calls, first the node an
// agent is connected to gets SIGKILL, then (once it is back and caught up) the node leading the
// presence stream. Calls go on (none fails), no live instance is ever evicted, and after the
// second kill presence still follows changes: an agent that stops leaves the SDK's view, and
// one that starts joins it.
//
// Presence bounds are for "follows at all": on nats-server 2.9.10 on a loaded 2-core machine a
// stream that lost its leader took up to 18 s to take writes again.

const HEARTBEAT_MS = 1000;
const HEARTBEAT_TIMEOUT_MS = 3 * HEARTBEAT_MS;
const RATE = 400;
const TIMEOUT_MS = 2000;
const PRESENCE_BOUND_MS = 60_000;

let cluster: NatsCluster;
let place: MeshPlace;
let mesh: Mesh;
const agents: AgentProcess[] = [];

beforeAll(async () => {
  cluster = await startNatsCluster({ size: 3 });
  place = { servers: cluster.urls, prefix: uniquePrefix("rclu"), heartbeatMs: HEARTBEAT_MS };
  const registry = { replicas: 3, heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS };
  await startRegistryProcess(place, registry);
  await startRegistryProcess(place, registry);
  for (let i = 0; i < 3; i++) agents.push(await startAgentProcess(place, { delayMs: 1 }));
  mesh = await connectMesh({
    servers: cluster.urls,
    prefix: place.prefix,
    timeoutMs: TIMEOUT_MS,
    retries: 3,
  });
}, 120_000);

afterAll(async () => {
  await killAllProcesses();
  await cleanup(mesh);
  await cluster?.dispose();
});

function nodeNamed(name: string | undefined): number {
  const node = cluster.servers.findIndex((_, i) => name === `${cluster.name}-n${i}`);
  expect(node, `node ${name}`).toBeGreaterThanOrEqual(0);
  return node;
}

function viewIs(agents: readonly AgentProcess[]): () => boolean {
  const want = idsOf(agents);
  return () => viewIds(mesh) === want;
}

/** Restarts `node` and waits until the presence stream is current on all three replicas. */
async function bringBack(node: number): Promise<void> {
  await cluster.servers[node]!.restart();
  await cluster.waitReady();
  const jsm = await jetstreamManager(mesh.connection);
  await until(
    "the presence stream current on three replicas",
    async () => {
      const info = await jsm.streams
        .info(`KV_${presenceBucket(place.prefix)}`)
        .catch(() => undefined);
      const peers = info?.cluster?.replicas ?? [];
      return (
        info?.cluster?.leader !== undefined && peers.length === 2 && peers.every((p) => p.current)
      );
    },
    { timeoutMs: PRESENCE_BOUND_MS },
  );
}

describe("3-node cluster node kills under load", () => {
  it("keeps calls and presence right when an agent's node, then the stream leader, die", async () => {
    await until("three agents in the SDK's view", viewIs(agents), {
      timeoutMs: 30_000,
    });
    const log = new CallLog();
    const evicted: string[] = [];
    const live = new Set(agents.map((a) => a.id));
    const watching = new AbortController();
    void (async () => {
      for await (const e of mesh.watch("svc", { signal: watching.signal })) {
        if (e.type === "down" && live.has(e.instance.id)) evicted.push(e.instance.id);
      }
    })();
    const load = startLoad({
      rate: RATE,
      durationMs: 600_000,
      maxInflight: 512,
      call: (n) => mesh.request("svc", "work", { n }, { idempotent: true }),
      onOutcome: log.record,
    });
    const figures: string[] = [];
    try {
      await until("calls flowing", () => log.calls.length >= RATE, { timeoutMs: 15_000 });

      // 1. The node the first agent is connected to.
      const probe = await probeAgent(mesh.connection, place.prefix, agents[0]!.id);
      const agentNode = nodeNamed(probe.server);
      let started = performance.now();
      await cluster.servers[agentNode]!.kill();
      // The agent fails over and goes on heartbeating: over three heartbeat timeouts, it stays.
      const settled = log.calls.length;
      await until("calls after the first kill", () => log.calls.length >= settled + 4 * RATE, {
        timeoutMs: PRESENCE_BOUND_MS,
      });
      await until(
        "three heartbeat timeouts",
        () => performance.now() - started > 3 * HEARTBEAT_TIMEOUT_MS,
        {
          timeoutMs: 3 * HEARTBEAT_TIMEOUT_MS + 5000,
        },
      );
      expect(evicted).toEqual([]);
      expect(viewIs(agents)()).toBe(true);
      figures.push(`agent's node killed: ${log.failed.length} failed`);
      await bringBack(agentNode);

      // 2. The node leading the presence stream.
      const jsm = await jetstreamManager(mesh.connection);
      const stream = `KV_${presenceBucket(place.prefix)}`;
      const leaderNode = nodeNamed((await jsm.streams.info(stream)).cluster?.leader);
      started = performance.now();
      await cluster.servers[leaderNode]!.kill();
      const leaving = agents.shift()!;
      live.delete(leaving.id);
      await leaving.stop();
      await until("the stopped agent gone from the SDK's view", viewIs(agents), {
        timeoutMs: PRESENCE_BOUND_MS,
      });
      const goneMs = performance.now() - started;
      started = performance.now();
      const arriving = await startAgentProcess(place, { delayMs: 1 });
      agents.push(arriving);
      live.add(arriving.id);
      await until("the new agent in the SDK's view", viewIs(agents), {
        timeoutMs: PRESENCE_BOUND_MS,
      });
      const joinedMs = performance.now() - started;
      const summary = await load.stop();
      figures.push(
        `stream leader killed: the stopped agent gone from the SDK's view after ${(goneMs / 1000).toFixed(1)} s, ` +
          `new one in after ${(joinedMs / 1000).toFixed(1)} s`,
      );
      console.info(
        `[reliability] cluster node kills: ${summary.started} calls at ${Math.round(summary.rate)}/s, ` +
          `${log.failed.length} failed ${JSON.stringify(log.codes())}; longest call ${log.longest()} ms; ` +
          `${figures.join("; ")}`,
      );
      expect(summary.skipped).toBe(0);
      expect(summary.settled).toBe(summary.started);
      expect(log.failed).toEqual([]);
      expect(evicted).toEqual([]);
      await bringBack(leaderNode);
    } finally {
      watching.abort();
      await load.stop();
    }
  }, 300_000);
});
