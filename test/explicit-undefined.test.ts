import { startAgent } from "@natsmesh/agent";
import { DEFAULT_PREFIX } from "@natsmesh/protocol";
import { startRegistry } from "@natsmesh/registry";
import { connectMesh } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup, until } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// An option written as `undefined` (`{ prefix: process.env.X }` with X unset) means "the
// default", exactly as if it had been left out.

let t: TestSetup;
beforeAll(async () => {
  t = await setup();
});
afterAll(() => cleanup(t));

describe("options given as undefined take their defaults", () => {
  it("startAgent, startRegistry and connectMesh with every other option undefined", async () => {
    const agent = await startAgent({
      servers: t.server.url,
      connection: undefined,
      credentials: undefined,
      service: "echo",
      methods: { say: (p) => p },
      version: undefined,
      weight: undefined,
      auth: undefined,
      token: undefined,
      concurrency: undefined,
      heartbeatMs: undefined,
      drainTimeoutMs: undefined,
      prefix: undefined,
      inboxPrefixes: undefined,
      inboxPrefix: undefined,
      zone: undefined,
      metadata: undefined,
      description: undefined,
      mesh: undefined,
      logger: undefined,
    });
    const registry = await startRegistry({
      servers: t.server.url,
      connection: undefined,
      credentials: undefined,
      prefix: undefined,
      heartbeatTimeoutMs: undefined,
      leaseMs: undefined,
      replicas: undefined,
      http: undefined,
      auth: undefined,
      inboxPrefix: undefined,
      logger: undefined,
    });
    const mesh = await connectMesh({
      servers: t.server.url,
      connection: undefined,
      credentials: undefined,
      prefix: undefined,
      timeoutMs: undefined,
      codec: undefined,
      retries: undefined,
      closeTimeoutMs: undefined,
      inboxPrefix: undefined,
      balance: undefined,
      presence: undefined,
      token: undefined,
      logger: undefined,
    });
    try {
      expect(agent.record.subject).toBe(`${DEFAULT_PREFIX}.inst.echo.${agent.id}`);
      expect(agent.record.weight).toBe(100);
      expect(await mesh.request("echo", "say", { n: 1 })).toEqual({ n: 1 });
      await until("echo in the presence cache", () => mesh.instances("echo").length === 1);
      expect(await mesh.request("echo", "say", 2, { balance: "random", timeout: undefined })).toBe(
        2,
      );
    } finally {
      await cleanup(agent, registry, mesh);
    }
  });
});
