import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { type NatsServer, startNatsServer } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAlive, nextReconnect } from "./helpers.js";

// The process runtime, explicitly, so the assertions on pids hold wherever the suite runs;
// container.test.ts runs the same lifecycle in containers.
const runtime = "process";

describe("startNatsServer", () => {
  let server: NatsServer;

  beforeAll(async () => {
    server = await startNatsServer({ runtime });
  });

  afterAll(async () => {
    await server?.dispose();
  });

  it("starts a server on its own port that a client can use", async () => {
    expect(server.port).toBeGreaterThan(0);
    expect(server.port).not.toBe(4222);
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    expect(server.running).toBe(true);
    expect(isAlive(server.pid!)).toBe(true);
    const nc = await connect({ servers: server.url });
    try {
      const sub = nc.subscribe("hello", { max: 1 });
      nc.publish("hello", "world");
      for await (const msg of sub) expect(msg.string()).toBe("world");
      expect(nc.info?.jetstream).toBe(true);
    } finally {
      await nc.close();
    }
  });

  it("round-trips a KV value", async () => {
    const nc = await connect({ servers: server.url });
    try {
      const kv = await new Kvm(nc).create("roundtrip");
      await kv.put("k", "v1");
      expect((await kv.get("k"))?.string()).toBe("v1");
    } finally {
      await nc.close();
    }
  });

  it("keeps port and file store across restart()", async () => {
    const nc = await connect({ servers: server.url });
    const kv = await new Kvm(nc).create("survives-restart");
    await kv.put("k", "before");
    await nc.close();
    const { port, url, storeDir } = server;
    const oldPid = server.pid!;

    await server.restart();

    expect(server.port).toBe(port);
    expect(server.url).toBe(url);
    expect(server.storeDir).toBe(storeDir);
    expect(server.pid).not.toBe(oldPid);
    expect(isAlive(oldPid)).toBe(false);
    const nc2 = await connect({ servers: server.url });
    try {
      const kv2 = await new Kvm(nc2).open("survives-restart");
      expect((await kv2.get("k"))?.string()).toBe("before");
    } finally {
      await nc2.close();
    }
  });

  it("restarts after kill(), and a live client reconnects to the same URL", async () => {
    const nc = await connect({ servers: server.url, reconnectTimeWait: 100 });
    try {
      const kv = await new Kvm(nc).create("survives-kill");
      await kv.put("k", "acked");
      const pid = server.pid!;
      const reconnected = nextReconnect(nc, 15_000);

      await server.kill();
      expect(server.running).toBe(false);
      expect(server.pid).toBeUndefined();
      expect(isAlive(pid)).toBe(false);

      await server.restart();
      await reconnected;
      expect((await kv.get("k"))?.string()).toBe("acked");
    } finally {
      await nc.close();
    }
  });

  it("stop() is idempotent, leaves no process behind, and keeps the store for restart()", async () => {
    const pid = server.pid!;
    const first = server.stop();
    const second = server.stop();
    expect(second).toBe(first);
    await first;
    expect(server.running).toBe(false);
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(server.storeDir)).toBe(true);

    await server.restart();
    expect(server.running).toBe(true);
    expect(server.stop()).not.toBe(first);
    await server.stop();
  });
});

describe("server options and disposal", () => {
  it("applies maxPayload, and dispose() removes the store", async () => {
    const server = await startNatsServer({ runtime, maxPayload: 64 * 1024 });
    const pid = server.pid!;
    const nc = await connect({ servers: server.url });
    expect(nc.info?.max_payload).toBe(64 * 1024);
    await nc.close();

    const disposing = server.dispose();
    expect(server.dispose()).toBe(disposing);
    await disposing;
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(server.storeDir)).toBe(false);
    await expect(server.restart()).rejects.toMatchObject({ code: "DISPOSED" });
  });

  it("runs a caller's configuration file as it is, reading $NAME from env; adds its own text after it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "natsmesh-conf-"));
    const file = join(dir, "auth.conf");
    writeFileSync(
      file,
      "authorization { users = [ { user: alice, password: $ALICE_PASSWORD } ] }\n",
    );
    try {
      for (const extra of [{}, { maxPayload: 32 * 1024 }]) {
        await using server = await startNatsServer({
          runtime,
          configFile: file,
          env: { ALICE_PASSWORD: "s3cret" },
          ...extra,
        });
        await expect(
          connect({ servers: server.url, user: "alice", pass: "wrong" }),
        ).rejects.toThrow(/Authorization/);
        const nc = await connect({ servers: server.url, user: "alice", pass: "s3cret" });
        try {
          expect(nc.info?.jetstream).toBe(true);
          expect(nc.info?.max_payload).toBe("maxPayload" in extra ? extra.maxPayload : 1024 * 1024);
        } finally {
          await nc.close();
        }
      }
      // Without the variable the file cannot be read, and the start says why.
      await expect(startNatsServer({ runtime, configFile: file })).rejects.toMatchObject({
        code: "START_FAILED",
        message: expect.stringContaining("ALICE_PASSWORD"),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("runs without JetStream when asked", async () => {
    await using server = await startNatsServer({ runtime, jetstream: false });
    const nc = await connect({ servers: server.url });
    try {
      expect(nc.info?.jetstream ?? false).toBe(false);
    } finally {
      await nc.close();
    }
  });

  it("cleans up on `await using`", async () => {
    let pid = 0;
    let storeDir = "";
    {
      await using server = await startNatsServer({ runtime });
      pid = server.pid!;
      storeDir = server.storeDir;
      expect(isAlive(pid)).toBe(true);
    }
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(storeDir)).toBe(false);
  });
});
