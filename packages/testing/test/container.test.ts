import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { type NatsServer, startNatsServer } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nextReconnect } from "./helpers.js";

// The container runtime, for real, against the Docker engine named by NATSMESH_DOCKER_HOST
// (`test/docker/engine.sh start` starts one and prints it, with the image and network to use;
// .ci/run does so when it can). Without one the suite is skipped, and says so.
const engine = process.env.NATSMESH_DOCKER_HOST;
const skip = engine === undefined || engine === "";
if (skip) {
  console.info(
    "container runtime tests skipped: no Docker engine (set NATSMESH_DOCKER_HOST, e.g. " +
      '`set -a; eval "$(test/docker/engine.sh start)"; set +a`)',
  );
} else {
  process.env.DOCKER_HOST ??= engine;
}
const runtime = "container";

/** Ids of the containers, running or not, that serve `server` (found by their label). */
async function containersOf(server: NatsServer): Promise<string[]> {
  const { getContainerRuntimeClient } = await import("testcontainers");
  const client = await getContainerRuntimeClient();
  const all = await client.container.list();
  return all
    .filter((c) => c.Labels["io.natsmesh.testing.store"] === server.storeDir)
    .map((c) => c.Id);
}

describe.skipIf(skip)("startNatsServer in a container (needs NATSMESH_DOCKER_HOST)", () => {
  let server: NatsServer;

  beforeAll(async () => {
    server = await startNatsServer({ runtime, startTimeoutMs: 30_000 });
  });

  afterAll(async () => {
    await server?.dispose();
  });

  it("runs one container that a client can use, with JetStream on", async () => {
    expect(server.running).toBe(true);
    expect(server.pid).toBeUndefined();
    expect(server.port).toBeGreaterThan(0);
    expect(server.port).not.toBe(4222);
    expect(await containersOf(server)).toHaveLength(1);
    const nc = await connect({ servers: server.url });
    try {
      expect(nc.info?.jetstream).toBe(true);
      const kv = await new Kvm(nc).create("roundtrip");
      await kv.put("k", "v1");
      expect((await kv.get("k"))?.string()).toBe("v1");
    } finally {
      await nc.close();
    }
  });

  it("keeps port, URL and store across restart(), in a new container", async () => {
    const nc = await connect({ servers: server.url });
    await new Kvm(nc).create("survives-restart").then((kv) => kv.put("k", "before"));
    await nc.close();
    const { url, storeDir } = server;
    const [before] = await containersOf(server);

    await server.restart();

    expect(server.url).toBe(url);
    expect(server.storeDir).toBe(storeDir);
    const after = await containersOf(server);
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(before);
    const nc2 = await connect({ servers: server.url });
    try {
      const kv = await new Kvm(nc2).open("survives-restart");
      expect((await kv.get("k"))?.string()).toBe("before");
    } finally {
      await nc2.close();
    }
  });

  it("kill() removes the container; restart() brings the data back and clients reconnect", async () => {
    const nc = await connect({ servers: server.url, reconnectTimeWait: 100 });
    try {
      const kv = await new Kvm(nc).create("survives-kill");
      await kv.put("k", "acked");
      const reconnected = nextReconnect(nc, 30_000);

      await server.kill();
      expect(server.running).toBe(false);
      expect(await containersOf(server)).toEqual([]);

      await server.restart();
      await reconnected;
      expect((await kv.get("k"))?.string()).toBe("acked");
    } finally {
      await nc.close();
    }
  });

  it("stop() is idempotent, removes the container and keeps the store", async () => {
    const first = server.stop();
    expect(server.stop()).toBe(first);
    await first;
    expect(server.running).toBe(false);
    expect(await containersOf(server)).toEqual([]);
    expect(existsSync(server.storeDir)).toBe(true);
    await server.restart();
    expect(server.running).toBe(true);
  });
});

describe.skipIf(skip)("container options and disposal (needs NATSMESH_DOCKER_HOST)", () => {
  it("applies maxPayload through a config file; dispose() removes container and store", async () => {
    const server = await startNatsServer({
      runtime,
      maxPayload: 64 * 1024,
      startTimeoutMs: 30_000,
    });
    const nc = await connect({ servers: server.url });
    expect(nc.info?.max_payload).toBe(64 * 1024);
    await nc.close();

    const disposing = server.dispose();
    expect(server.dispose()).toBe(disposing);
    await disposing;
    expect(await containersOf(server)).toEqual([]);
    expect(existsSync(server.storeDir)).toBe(false);
    await expect(server.restart()).rejects.toMatchObject({ code: "DISPOSED" });
  });

  it("runs a caller's configuration file with env, and its own text after it", async () => {
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
          startTimeoutMs: 30_000,
          ...extra,
        });
        await expect(
          connect({ servers: server.url, user: "alice", pass: "wrong" }),
        ).rejects.toThrow(/Authorization/);
        const nc = await connect({ servers: server.url, user: "alice", pass: "s3cret" });
        expect(nc.info?.max_payload).toBe("maxPayload" in extra ? extra.maxPayload : 1024 * 1024);
        await nc.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports an image that cannot start as START_FAILED, leaving nothing behind", async () => {
    const err = await startNatsServer({
      runtime,
      image: "natsmesh-no-such-image:never",
      startTimeoutMs: 15_000,
    }).catch((e) => e);
    expect(err).toMatchObject({ name: "NatsTestingError", code: "START_FAILED" });
    expect(err.message).toContain("natsmesh-no-such-image:never");
  });
});
