import { Kvm } from "@nats-io/kv";
import { startAgent } from "@natsmesh/agent";
import { type InstanceRecord, presenceBucket } from "@natsmesh/protocol";
import { startRegistry } from "@natsmesh/registry";
import { cleanup, setup, type TestSetup, uniquePrefix, until } from "@natsmesh/testing";
import { type Logger, pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lastSeq } from "./helpers.js";

// Fast heartbeats; the registry's default heartbeat timeout, so that a busy host, not a lost
// agent, never makes a live instance look gone.
const HEARTBEAT_MS = 100;
const TIMEOUT_MS = 3000;

let t: TestSetup;

beforeAll(async () => {
  t = await setup();
});
afterAll(() => cleanup(t));

function registryIn(prefix: string, logger?: Logger) {
  return startRegistry({
    servers: t.server.url,
    prefix,
    heartbeatTimeoutMs: TIMEOUT_MS,
    leaseMs: 1000,
    ...(logger === undefined ? {} : { logger }),
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

/**
 * A logger that records when the registry published each `P.presence.sync`, by the registry's
 * own clock: when a subscriber receives them would measure the host's load as well.
 */
function syncLog(): { logger: Logger; published: number[] } {
  const published: number[] = [];
  const logger = pino(
    { level: "debug" },
    {
      write: (line: string) => {
        const entry = JSON.parse(line) as { msg: string; time: number };
        if (entry.msg === "published presence sync") published.push(entry.time);
      },
    },
  );
  return { logger, published };
}

describe("presence sync", () => {
  it("asks for a sync on a heartbeat of an unknown instance, backing off, and never guesses its record", async () => {
    const prefix = uniquePrefix("s");
    const { logger, published } = syncLog();
    await using registry = await registryIn(prefix, logger);
    const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
    // Taking the lead publishes one; later ones can only come from the unknown heartbeats.
    await until("the lead's sync", () => published.length > 0);
    expect(published).toHaveLength(1);
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
    hb();
    const timer = setInterval(hb, HEARTBEAT_MS);
    try {
      // Asks for this instance back off (1 s, 2 s, 4 s, …), so an agent whose `up` never arrives
      // cannot make the mesh re-announce every second. The first ask may fall within the second
      // after the lead's own sync, which no sync may follow; three are published within 8 s.
      await until(
        () => `three syncs asked by heartbeats (published at ${published})`,
        () => published.length >= 4,
        { timeoutMs: 15_000 },
      );
    } finally {
      clearInterval(timer);
    }
    const [, , second, third] = published;
    // Without the backoff, the registry's own limit of one per second would space them 1 s.
    expect(third! - second!).toBeGreaterThanOrEqual(2000 - 50);
    expect(registry.instances()).toEqual([]);
    expect(await lastSeq(kv)).toBe(seq);
  }, 30_000);

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
    await until("the stale keys deleted", async () => {
      return !(await Promise.all(stale.map(present))).some(Boolean);
    });
    expect(await present(`echo.${live.id}`)).toBe(true);
    expect((await kv.get(`echo.${live.id}`))?.json()).toEqual(live.record);
    expect(second.stats).toMatchObject({ kvPuts: 0, kvDeletes: stale.length });
  });
});
