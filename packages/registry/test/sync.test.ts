import { Kvm } from "@nats-io/kv";
import { startAgent } from "@natsmesh/agent";
import { type InstanceRecord, presenceBucket } from "@natsmesh/protocol";
import { startRegistry } from "@natsmesh/registry";
import { cleanup, setup, type TestSetup, uniquePrefix } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lastSeq } from "./helpers.js";

const HEARTBEAT_MS = 100;
const TIMEOUT_MS = 600;

let t: TestSetup;

beforeAll(async () => {
  t = await setup();
});
afterAll(() => cleanup(t));

function registryIn(prefix: string) {
  return startRegistry({
    servers: t.server.url,
    prefix,
    heartbeatTimeoutMs: TIMEOUT_MS,
    leaseMs: 1000,
  });
}

function agentIn(prefix: string, service = "echo") {
  return startAgent({
    servers: t.server.url,
    prefix,
    service,
    heartbeatMs: HEARTBEAT_MS,
    methods: { say: (p) => p },
  });
}

/** Records when `P.presence.sync` messages arrive. */
async function countSyncs(prefix: string) {
  const at: number[] = [];
  const sub = t.nc.subscribe(`${prefix}.presence.sync`, {
    callback: () => {
      at.push(performance.now());
    },
  });
  await t.nc.flush();
  return { at, count: () => at.length, stop: () => sub.unsubscribe() };
}

describe("presence sync", () => {
  it("asks for a sync on a heartbeat of an unknown instance, and never guesses its record", async () => {
    const prefix = uniquePrefix("s");
    const syncs = await countSyncs(prefix);
    await using registry = await registryIn(prefix);
    const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
    // Taking the lead publishes one; a later one can only come from the unknown heartbeat.
    await expect.poll(() => syncs.count()).toBe(1);
    const seq = await lastSeq(kv);
    let seqNo = 0;
    const hb = () =>
      t.nc.publish(
        `${prefix}.presence.ghost.G1`,
        JSON.stringify({
          kind: "hb",
          service: "ghost",
          id: "G1",
          seq: ++seqNo,
          inflight: 0,
          status: "ready",
        }),
      );
    const start = performance.now();
    hb();
    const timer = setInterval(hb, HEARTBEAT_MS);
    try {
      await expect.poll(() => syncs.count(), { timeout: 5000 }).toBeGreaterThanOrEqual(2);
      // ~3.5 s of heartbeats: asks for this instance back off (after 1 s, then 2 s more), so
      // an agent whose `up` never arrives cannot make the mesh re-announce every second.
      await expect
        .poll(() => registry.stats.heartbeats, { timeout: 10_000 })
        .toBeGreaterThanOrEqual(36);
    } finally {
      clearInterval(timer);
    }
    // Without the backoff there would be one at ~2 s and one at ~3 s.
    expect(syncs.at.filter((t) => t > start + 1500 && t < start + 3500).length).toBeLessThanOrEqual(
      1,
    );
    expect(registry.instances()).toEqual([]);
    expect(await lastSeq(kv)).toBe(seq);
    syncs.stop();
  });

  it("lets a registry started after an agent learn it from its heartbeats", async () => {
    const prefix = uniquePrefix("s");
    await using leader = await registryIn(prefix);
    await using agent = await agentIn(prefix);
    await expect.poll(() => leader.instances().map((r) => r.id)).toEqual([agent.id]);
    // The follower never saw the agent's `up`, and takes no lead that would publish a sync.
    await using follower = await registryIn(prefix);
    expect(follower.isLeader).toBe(false);
    await expect.poll(() => follower.instances().map((r) => r.id)).toEqual([agent.id]);
    expect(follower.stats.syncs).toBeGreaterThanOrEqual(1);
    expect(follower.stats.kvWrites).toBe(0);
  });

  it("puts agents that started before any registry", async () => {
    const prefix = uniquePrefix("s");
    await using agent = await agentIn(prefix);
    await using _registry = await registryIn(prefix);
    const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
    await expect
      .poll(() => kv.get(`echo.${agent.id}`).then((e) => e?.json()))
      .toEqual(agent.record);
  });

  it("reconciles on restart: deletes stale keys, keeps live ones without rewriting them", async () => {
    const prefix = uniquePrefix("s");
    const first = await registryIn(prefix);
    const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
    await using live = await agentIn(prefix);
    const missed = await agentIn(prefix, "missed");
    await expect.poll(() => first.stats.kvPuts).toBe(2);
    await first.stop();

    // While no registry runs: an agent stops (its `down` is lost), and keys appear by hand.
    await missed.stop();
    const ghost: InstanceRecord = {
      ...live.record,
      id: "GHOST",
      subject: `${prefix}.inst.echo.GHOST`,
    };
    await kv.put("echo.GHOST", JSON.stringify(ghost));
    await kv.put("junk", "not a record");
    const stale = [`missed.${missed.id}`, "echo.GHOST", "junk"];

    await using second = await registryIn(prefix);
    const present = async (key: string) => (await kv.get(key))?.operation === "PUT";
    await expect
      .poll(async () => (await Promise.all(stale.map(present))).some(Boolean), { timeout: 5000 })
      .toBe(false);
    expect(await present(`echo.${live.id}`)).toBe(true);
    expect((await kv.get(`echo.${live.id}`))?.json()).toEqual(live.record);
    expect(second.stats).toMatchObject({ kvPuts: 0, kvDeletes: stale.length });
  });
});
