import { getEventListeners, setMaxListeners } from "node:events";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { type Agent, startAgent } from "@natsmesh/agent";
import { isMeshError, presenceBucket, presenceKey } from "@natsmesh/protocol";
import { startRegistry } from "@natsmesh/registry";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import {
  type Cleanable,
  cleanup,
  setup,
  startNatsServer,
  type TestSetup,
  uniquePrefix,
} from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

// mesh.ready(): the presence view has settled (snapshot in, or no bucket), or a service has a
// ready instance in it; bounded by a timeout and a signal; refused without presence.

let t: TestSetup;
let started: Cleanable[] = [];

beforeAll(async () => {
  t = await setup({ tag: "ready" });
});
afterEach(async () => {
  await cleanup(...started);
  started = [];
});
afterAll(() => cleanup(t));

function track<T extends Cleanable>(item: T): T {
  started.push(item);
  return item;
}

async function mesh(prefix: string, options: Parameters<typeof connectMesh>[0] = {}) {
  return track(await connectMesh({ servers: t.server.url, prefix, ...options }));
}

async function echo(prefix: string, service = "echo"): Promise<Agent> {
  return track(
    await startAgent({
      servers: t.server.url,
      prefix,
      service,
      version: "1.0.0",
      heartbeatMs: 200,
      methods: { say: async (payload: unknown) => payload },
    }),
  );
}

async function registry(prefix: string) {
  return track(await startRegistry({ servers: t.server.url, prefix, heartbeatTimeoutMs: 1000 }));
}

/** Waits until the registry has written `agent` into the presence bucket. */
async function inBucket(prefix: string, agent: Agent): Promise<void> {
  const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
  await expect
    .poll(async () => (await kv.get(presenceKey(agent.record.service, agent.id)))?.operation)
    .toBe("PUT");
}

function codeOf(err: unknown): string | undefined {
  return isMeshError(err) ? err.code : undefined;
}

describe("mesh.ready()", () => {
  it("resolves once the snapshot is in: instances() then holds what the bucket held", async () => {
    const prefix = uniquePrefix("ready");
    await registry(prefix);
    const agents = [await echo(prefix), await echo(prefix), await echo(prefix, "greeter")];
    for (const a of agents) await inBucket(prefix, a);
    const m = await mesh(prefix);
    await m.ready();
    // No poll: right after ready() the view is the bucket's.
    expect(
      m
        .instances()
        .map((r) => r.id)
        .sort(),
    ).toEqual(agents.map((a) => a.id).sort());
  });

  it("resolves on an empty bucket and on a missing one (no registry: nothing to wait for)", async () => {
    const empty = uniquePrefix("ready");
    await registry(empty);
    const a = await mesh(empty);
    await a.ready({ timeout: 10_000 });
    expect(a.instances()).toEqual([]);

    const missing = uniquePrefix("ready");
    const b = await mesh(missing);
    await b.ready({ timeout: 10_000 });
    expect(b.instances()).toEqual([]);
    // The bucket never appeared: ready() did not create it.
    const jsm = await jetstreamManager(t.nc);
    await expect(jsm.streams.info(`KV_${presenceBucket(missing)}`)).rejects.toThrow();
  });

  it("with service, waits until a ready instance of it is in the view, then the call picks it", async () => {
    const prefix = uniquePrefix("ready");
    await registry(prefix);
    const m = await mesh(prefix);
    await m.ready();
    // Many callers at once share one wait; none resolves before the agent is there.
    const waits = Array.from({ length: 50 }, () => m.ready({ service: "late", timeout: 20_000 }));
    let early = false;
    void Promise.race(waits).then(() => {
      early = m.instances("late").length === 0;
    });
    const agent = await echo(prefix, "late");
    await Promise.all(waits);
    expect(early).toBe(false);
    expect(m.instances("late").map((r) => r.id)).toEqual([agent.id]);
    await expect(m.request("late", "say", "hi", { balance: "round-robin" })).resolves.toBe("hi");
  });

  it("rejects with DEADLINE_EXCEEDED when the service never shows, and leaves no listener", async () => {
    const prefix = uniquePrefix("ready");
    await registry(prefix);
    const m = await mesh(prefix);
    const controller = new AbortController();
    setMaxListeners(500, controller.signal);
    const tries = Array.from({ length: 200 }, () =>
      m.ready({ service: "ghost", timeout: 300, signal: controller.signal }).catch(codeOf),
    );
    expect(await Promise.all(tries)).toEqual(Array(200).fill("DEADLINE_EXCEEDED"));
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("rejects with UNAVAILABLE when the presence bucket cannot be read (no JetStream)", async () => {
    const plain = track(await startNatsServer({ jetstream: false }));
    const m = track(await connectMesh({ servers: plain.url, prefix: uniquePrefix("ready") }));
    const err = await m.ready({ timeout: 1500 }).catch((e: unknown) => e);
    expect(codeOf(err)).toBe("UNAVAILABLE");
    expect((err as Error).cause).toBeDefined();
  });

  it("rejects with the signal's reason when it aborts, at once for an aborted one", async () => {
    const prefix = uniquePrefix("ready");
    const m = await mesh(prefix);
    const controller = new AbortController();
    const pending = m.ready({ service: "ghost", timeout: 60_000, signal: controller.signal });
    const reason = new Error("stop waiting");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await expect(m.ready({ signal: controller.signal })).rejects.toBe(reason);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("rejects with UNAVAILABLE after close, and pending waits when close begins", async () => {
    const prefix = uniquePrefix("ready");
    const m = await mesh(prefix);
    const pending = m.ready({ service: "ghost", timeout: 60_000 }).catch(codeOf);
    const closing = m.close();
    expect(await pending).toBe("UNAVAILABLE");
    await closing;
    expect(await m.ready().catch(codeOf)).toBe("UNAVAILABLE");
  });

  it("throws TypeError on a mesh without presence, and on invalid options", async () => {
    const prefix = uniquePrefix("ready");
    const off = await mesh(prefix, { presence: false });
    expect(() => off.ready()).toThrow(/presence: false/);
    expect(() => off.ready()).toThrow(TypeError);
    const m: Mesh = await mesh(prefix);
    expect(() => m.ready({ timeout: -1 })).toThrow(TypeError);
    expect(() => m.ready({ service: "no.dots" })).toThrow(TypeError);
  });
});
