import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { eventStream, Header } from "@natsmesh/protocol";
import { connectMesh } from "@natsmesh/sdk";
import {
  type Fixture,
  killAllProcesses,
  startFixture,
  startNatsCluster,
  startNatsServer,
  uniquePrefix,
  until,
  waitUntil,
} from "@natsmesh/testing";
import { afterEach, describe, expect, it } from "vitest";

const fixture = new URL("./fixtures/event-agent.mjs", import.meta.url);

afterEach(() => killAllProcesses());

/** Every event number a fixture printed as handled. */
function handled(f: Fixture<unknown>): number[] {
  return f.process.stdout.slice(1).map((line) => (JSON.parse(line) as { n: number }).n);
}

describe("events under faults", () => {
  it("redelivers what a SIGKILLed instance was handling to another one, losing none", async () => {
    await using server = await startNatsServer();
    const prefix = uniquePrefix("evk");
    const env = {
      NATS_URL: server.url,
      MESH_PREFIX: prefix,
      EVENT_DELAY_MS: "20",
      EVENT_ACK_WAIT_MS: "2000",
    };
    const a = await startFixture(fixture, [], { env });
    const b = await startFixture(fixture, [], { env });
    await using mesh = await connectMesh({ servers: server.url, prefix, presence: false });
    const n = 400;
    await Promise.all(Array.from({ length: n }, (_, i) => mesh.emit("job.run", { n: i })));
    expect(await waitUntil(() => handled(a).length >= 20, { timeoutMs: 20_000 })).toBe(true);
    // Killed mid-handler: with 8 slots busy for 20 ms each, some events are in its hands.
    await a.kill();
    const seen = () => new Set([...handled(a), ...handled(b)]);
    expect(await waitUntil(() => seen().size === n, { timeoutMs: 30_000 })).toBe(true);
    const all = [...handled(a), ...handled(b)];
    const duplicates = all.length - n;
    // At least once: any duplicate is an event the killed instance handled but had not acked.
    expect(duplicates).toBeGreaterThanOrEqual(0);
    expect(duplicates).toBeLessThanOrEqual(8);
    const redelivered = b.process.stdout
      .slice(1)
      .filter((l) => (JSON.parse(l) as { deliveries: number }).deliveries > 1);
    expect(redelivered.length).toBeGreaterThan(0);
  }, 60_000);

  it("loses no acknowledged event when nats-server restarts during a stream of emits", async () => {
    await using server = await startNatsServer();
    const prefix = uniquePrefix("evr");
    await using mesh = await connectMesh({
      servers: server.url,
      prefix,
      presence: false,
      timeoutMs: 15_000,
      streams: { maxBytes: 64 * 1024 ** 2 },
    });
    const acked = new Map<string, number>();
    const failed: unknown[] = [];
    let sent = 0;
    const worker = async (w: number) => {
      // Bounded: 150 events per worker.
      for (let i = 0; i < 150; i++) {
        const id = `w${w}-${i}`;
        sent++;
        try {
          const ack = await mesh.emit("tick", { id }, { idempotencyKey: id });
          acked.set(id, ack.seq);
        } catch (err) {
          failed.push(err);
        }
      }
    };
    const load = Promise.all([0, 1, 2, 3].map(worker));
    expect(await waitUntil(() => acked.size >= 100, { timeoutMs: 20_000 })).toBe(true);
    await server.restart();
    await load;
    expect(sent).toBe(600);
    expect(failed).toEqual([]);
    expect(acked.size).toBe(600);
    const nc = await connect({ servers: server.url });
    try {
      const jsm = await jetstreamManager(nc);
      for (const [id, seq] of acked) {
        const m = await jsm.streams.getMessage(eventStream(prefix), { seq });
        expect(m?.header.get(Header.MsgId)).toBe(id);
      }
      // Retried emits were stored once each.
      expect((await jsm.streams.info(eventStream(prefix))).state.messages).toBe(600);
    } finally {
      await nc.close();
    }
  }, 90_000);

  it("keeps every acknowledged event of R3 streams when the stream's leader dies", async () => {
    await using cluster = await startNatsCluster();
    const prefix = uniquePrefix("evc");
    const servers = cluster.urls.join(",");
    const worker = await startFixture(fixture, [], {
      env: { NATS_URL: servers, MESH_PREFIX: prefix, STREAM_REPLICAS: "3" },
      timeoutMs: 30_000,
    });
    await using mesh = await connectMesh({
      servers: cluster.urls,
      prefix,
      presence: false,
      timeoutMs: 20_000,
      streams: { replicas: 3 },
    });
    const nc = await connect({ servers: cluster.urls });
    try {
      const jsm = await jetstreamManager(nc);
      const stream = eventStream(prefix);
      /** The stream's leader and whether both followers are current, as the server says. */
      const placement = async () => {
        const info = await jsm.streams.info(stream);
        const followers = info.cluster?.replicas ?? [];
        return {
          replicas: info.config.num_replicas,
          leader: info.cluster?.leader,
          current: followers.length === 2 && followers.every((r) => r.current && !r.offline),
        };
      };
      let seen = await placement();
      await until(
        () => `the stream's 3 replicas to be in place (${JSON.stringify(seen)})`,
        async () => {
          seen = await placement();
          return seen.leader !== undefined && seen.current;
        },
        { timeoutMs: 20_000 },
      );
      expect(seen.replicas).toBe(3);

      const acked = new Set<number>();
      const failed: unknown[] = [];
      const emitter = async (w: number) => {
        for (let i = 0; i < 100; i++) {
          const n = w * 100 + i;
          try {
            await mesh.emit("job.run", { n }, { idempotencyKey: `n${n}` });
            acked.add(n);
          } catch (err) {
            failed.push(err);
          }
        }
      };
      const load = Promise.all([0, 1, 2].map(emitter));
      await until("50 acknowledged emits", () => acked.size >= 50, { timeoutMs: 20_000 });
      // The leader as it is now, just before it dies.
      const leader = (await placement()).leader;
      const index = cluster.servers.findIndex((_, i) => `${cluster.name}-n${i}` === leader);
      expect(index, `leader ${leader}`).toBeGreaterThanOrEqual(0);
      await cluster.servers[index]!.kill();
      await load;
      expect(failed).toEqual([]);
      expect(acked.size).toBe(300);
      // A survivor took over the stream, and every acknowledged event reached the worker.
      await until(
        () => `a new leader (${JSON.stringify(seen)})`,
        async () => {
          seen = await placement().catch(() => seen);
          return seen.leader !== undefined && seen.leader !== leader;
        },
        { timeoutMs: 30_000 },
      );
      const handledOnce = () => new Set(handled(worker));
      await until(
        () => `every acknowledged event handled (${handledOnce().size} of 300)`,
        () => handledOnce().size === 300,
        { timeoutMs: 45_000 },
      );
      expect([...acked].every((n) => handledOnce().has(n))).toBe(true);
      expect((await jsm.streams.info(stream)).state.messages).toBe(300);
    } finally {
      await nc.close();
    }
  }, 120_000);
});
