import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { startAgent } from "@natsmesh/agent";
import { isMeshError, presenceBucket } from "@natsmesh/protocol";
import { type RegistryOptions, startRegistry } from "@natsmesh/registry";
import { cleanup, setup, startNatsServer, type TestSetup, uniquePrefix } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestSetup;

beforeAll(async () => {
  t = await setup();
});
afterAll(() => cleanup(t));

describe("registry lifecycle", () => {
  it("stops idempotently and leaves a given connection open", async () => {
    const registry = await startRegistry({ connection: t.nc, prefix: uniquePrefix("f") });
    expect(registry.connection).toBe(t.nc);
    expect(registry.httpPort).toBeUndefined();
    const first = registry.stop();
    expect(registry.stop()).toBe(first);
    expect(registry[Symbol.asyncDispose]()).toBe(first);
    await first;
    expect(registry.isLeader).toBe(false);
    expect(t.nc.isClosed()).toBe(false);
    await t.nc.flush();
  });

  it("closes the connection it opened", async () => {
    const registry = await startRegistry({ servers: t.server.url, prefix: uniquePrefix("f") });
    await registry.stop();
    expect(registry.connection.isClosed()).toBe(true);
  });

  it.each<[string, RegistryOptions]>([
    ["prefix", { prefix: "a b" }],
    ["heartbeatTimeoutMs", { heartbeatTimeoutMs: 0 }],
    ["heartbeatTimeoutMs", { heartbeatTimeoutMs: 1.5 }],
    ["leaseMs", { leaseMs: 10 }],
    ["replicas", { replicas: 7 }],
    ["http.port", { http: { port: 70_000 } }],
    ["http.host", { http: { port: 0, host: "" } }],
    ["auth", { auth: { jwks: {} as never } }],
  ])("refuses a bad %s with a TypeError before connecting", async (_, options) => {
    // An unreachable server: only a check made before connecting can answer TypeError.
    await expect(startRegistry({ servers: "nats://127.0.0.1:1", ...options })).rejects.toThrow(
      TypeError,
    );
  });

  it("fails with UNAVAILABLE when JetStream is off", async () => {
    await using plain = await setup({ jetstream: false });
    const err = await startRegistry({ connection: plain.nc }).catch((e: unknown) => e);
    expect(isMeshError(err, "UNAVAILABLE")).toBe(true);
    expect(plain.nc.isClosed()).toBe(false);
  });

  it("recovers from a nats-server restart without evicting live instances", async () => {
    await using own = await startNatsServer();
    const prefix = uniquePrefix("f");
    await using registry = await startRegistry({
      servers: own.url,
      prefix,
      heartbeatTimeoutMs: 600,
      leaseMs: 1000,
    });
    await using agent = await startAgent({
      servers: own.url,
      prefix,
      service: "echo",
      heartbeatMs: 100,
      methods: { say: (p) => p },
    });
    await expect.poll(() => registry.stats.kvPuts).toBe(1);
    const syncs = registry.stats.syncs;
    await own.restart();
    // After the reconnect the leader reconciles again, which starts with a sync.
    await expect
      .poll(() => registry.isLeader && registry.stats.syncs > syncs, { timeout: 10_000 })
      .toBe(true);
    // Connected after the restart, so it needs no reconnect of its own before the checks.
    const check = await connect({ servers: own.url });
    try {
      const kv = await new Kvm(check).open(presenceBucket(prefix));
      await using later = await startAgent({
        connection: check,
        prefix,
        service: "later",
        heartbeatMs: 100,
        methods: { m: () => 1 },
      });
      await expect
        .poll(() => kv.get(`later.${later.id}`).then((e) => e?.operation), { timeout: 5000 })
        .toBe("PUT");
      await expect
        .poll(() => kv.get(`echo.${agent.id}`).then((e) => e?.json()), { timeout: 5000 })
        .toEqual(agent.record);
      expect(registry.stats.evictions).toBe(0);
    } finally {
      await check.close();
    }
  });
});
