import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { startAgent } from "@natsmesh/agent";
import { presenceBucket } from "@natsmesh/protocol";
import { type NatsServer, startNatsServer } from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { killAll, runCli, startCli, uniquePrefix } from "./cli-process.js";

let server: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});
afterEach(killAll);
afterAll(async () => {
  await nc?.close();
  await server?.dispose();
});

/** The log line (pino JSON) at `index` of a registry's stdout. */
function logAt(lines: readonly string[], index: number): Record<string, unknown> {
  return JSON.parse(lines[index]!) as Record<string, unknown>;
}

describe("natsmesh registry", () => {
  it("mirrors an agent's presence into KV, logs JSON, and exits 0 on SIGTERM", async () => {
    const prefix = uniquePrefix();
    const env = { NATS_URL: server.url, MESH_PREFIX: prefix, MESH_HEARTBEAT_MS: "100" };
    const registry = startCli(["registry", "--http-port", "0"], env);
    const started = await registry.waitFor(/"msg":"registry started"/);
    expect(logAt(registry.stdout, started)).toMatchObject({ level: 30, leader: true });
    const http = await registry.waitFor(/"msg":"http endpoint listening"/);
    const { port } = logAt(registry.stdout, http) as { port: number };
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);

    const agent = await startAgent({
      servers: server.url,
      prefix,
      service: "echo",
      heartbeatMs: 100,
      methods: { say: (p) => p },
    });
    const kv = await new Kvm(nc).open(presenceBucket(prefix));
    await expect
      .poll(async () => (await kv.get(`echo.${agent.id}`))?.json(), { timeout: 10_000 })
      .toEqual(agent.record);
    const ls = await runCli(["ls", "--json"], env);
    expect(JSON.parse(ls.stdout)).toEqual([agent.record]);

    await agent.stop();
    await expect
      .poll(async () => (await kv.get(`echo.${agent.id}`))?.operation, { timeout: 10_000 })
      .not.toBe("PUT");

    const t0 = Date.now();
    expect(await registry.stop("SIGTERM", 5_000)).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5_000);
    const last = registry.stdout.at(-1)!;
    expect(logAt(registry.stdout, registry.stdout.length - 1).msg).toBe("registry stopped");
    expect(last.startsWith("{")).toBe(true);
    expect(registry.stderr).toEqual([]);
  });

  it("evicts a silent instance after 3 × MESH_HEARTBEAT_MS when no timeout flag is given", async () => {
    const prefix = uniquePrefix();
    const env = { NATS_URL: server.url, MESH_PREFIX: prefix, MESH_HEARTBEAT_MS: "100" };
    const registry = startCli(["registry"], env);
    await registry.waitFor(/"msg":"registry started"/);
    // An announcement, then silence, as from a process that died without saying "down".
    const record = {
      v: 1,
      id: "silent1",
      service: "echo",
      version: "1.0.0",
      weight: 100,
      status: "ready",
      methods: ["say"],
      subject: `${prefix}.inst.echo.silent1`,
      host: "h",
      pid: 1,
      metadata: {},
      startedAt: Date.now(),
    };
    nc.publish(`${prefix}.presence.echo.silent1`, JSON.stringify({ kind: "up", instance: record }));
    const kv = await new Kvm(nc).open(presenceBucket(prefix));
    await expect
      .poll(async () => (await kv.get("echo.silent1"))?.operation, { timeout: 5_000 })
      .toBe("PUT");
    const seen = Date.now();
    await expect
      .poll(async () => (await kv.get("echo.silent1"))?.operation, { timeout: 5_000, interval: 50 })
      .not.toBe("PUT");
    // 300 ms of silence, not the 3 s default.
    expect(Date.now() - seen).toBeLessThan(2_500);
    expect(await registry.stop("SIGINT")).toBe(0);
  });
});
