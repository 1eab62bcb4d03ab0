import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { type NatsServer, startNatsServer } from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { killAll, startCli, uniquePrefix } from "./cli-process.js";
import { createPresenceBucket, makeRecord, putRecord } from "./records.js";

// A server of its own: restarting it must not disturb other suites.
let server: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
});
afterEach(killAll);
afterAll(async () => {
  await nc?.close();
  await server?.dispose();
});

describe("natsmesh watch across a server restart", () => {
  it("keeps printing changes after the server comes back, without repeating the snapshot", async () => {
    const prefix = uniquePrefix();
    const kv = await createPresenceBucket(nc, prefix);
    const before = makeRecord(prefix, "echo");
    await putRecord(kv, before);
    const cli = startCli(["watch"], { NATS_URL: server.url, MESH_PREFIX: prefix });
    await cli.waitFor(new RegExp(`  up      echo  ${before.id}  `));

    await server.restart();
    await cli.waitFor(/reconnected to NATS/, { stream: "stderr", timeoutMs: 15_000 });

    const after = makeRecord(prefix, "echo");
    await putRecord(kv, after);
    const at = await cli.waitFor(new RegExp(`  up      echo  ${after.id}  `), {
      timeoutMs: 15_000,
    });
    await kv.delete(`echo.${before.id}`);
    await cli.waitFor(new RegExp(`  down    echo  ${before.id}`), { from: at + 1 });

    expect(cli.stdout.filter((line) => line.includes(`  up      echo  ${before.id}`))).toHaveLength(
      1,
    );
    expect(await cli.stop("SIGTERM")).toBe(0);
  });
});
