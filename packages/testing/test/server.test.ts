import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { type NatsServer, startNatsServer } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAlive, nextReconnect } from "./helpers.js";

// One lifecycle, asserted the same way on both runtimes. The process runtime is named explicitly,
// so the assertions on pids hold wherever the suite runs. The container runtime runs for real
// against the Docker engine named by NATSMESH_DOCKER_HOST (`test/docker/engine.sh start` starts
// one and prints it, with the image and network to use; .ci/run does so when it can). Without one
// its suites are skipped, and say so.
const engine = process.env.NATSMESH_DOCKER_HOST;
const noEngine = engine === undefined || engine === "";
if (noEngine) {
  console.info(
    "container runtime tests skipped: no Docker engine (set NATSMESH_DOCKER_HOST, e.g. " +
      '`set -a; eval "$(test/docker/engine.sh start)"; set +a`)',
  );
} else {
  process.env.DOCKER_HOST ??= engine;
}

/** Ids of the containers, running or not, that serve `server` (found by their label). */
async function containersOf(server: NatsServer): Promise<string[]> {
  const { getContainerRuntimeClient } = await import("testcontainers");
  const client = await getContainerRuntimeClient();
  const all = await client.container.list();
  return all
    .filter((c) => c.Labels["io.natsmesh.testing.store"] === server.storeDir)
    .map((c) => c.Id);
}

/** A configuration file, in a directory of its own, whose user alice has the password $ALICE_PASSWORD. */
function aliceConf(): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), "natsmesh-conf-"));
  const file = join(dir, "auth.conf");
  writeFileSync(file, "authorization { users = [ { user: alice, password: $ALICE_PASSWORD } ] }\n");
  return { dir, file };
}

/** What differs between the runtimes, for the assertions they share. */
interface Runtime {
  runtime: "process" | "container";
  skip: boolean;
  /** Bound on each start: pulling and starting a container takes longer. */
  startTimeoutMs: number | undefined;
  /** Bound on a client's reconnect after kill() and restart(). */
  reconnectMs: number;
  /** Checks that one thing serves `server` (a live process, one container) and returns it. */
  serving(server: NatsServer): Promise<number | string>;
  /** Checks that `was` (from {@link serving}) is gone and nothing else serves `server`. */
  gone(server: NatsServer, was: number | string): Promise<void>;
  /** Checks that `now` (from {@link serving}) replaced `was`, which is gone. */
  replaced(server: NatsServer, was: number | string, now: number | string): Promise<void>;
}

const RUNTIMES: Runtime[] = [
  {
    runtime: "process",
    skip: false,
    startTimeoutMs: undefined,
    reconnectMs: 15_000,
    serving: async (server) => {
      expect(isAlive(server.pid!)).toBe(true);
      return server.pid!;
    },
    gone: async (server, was) => {
      expect(server.pid).toBeUndefined();
      expect(isAlive(was as number)).toBe(false);
    },
    replaced: async (_server, was, now) => {
      expect(now).not.toBe(was);
      expect(isAlive(was as number)).toBe(false);
    },
  },
  {
    runtime: "container",
    skip: noEngine,
    startTimeoutMs: 30_000,
    reconnectMs: 30_000,
    serving: async (server) => {
      expect(server.pid).toBeUndefined();
      const ids = await containersOf(server);
      expect(ids).toHaveLength(1);
      return ids[0]!;
    },
    gone: async (server) => {
      expect(await containersOf(server)).toEqual([]);
    },
    replaced: async (server, was, now) => {
      expect(now).not.toBe(was);
      expect(await containersOf(server)).toEqual([now]);
    },
  },
];

describe.each(RUNTIMES)("startNatsServer ($runtime runtime)", (rt) => {
  const { runtime, startTimeoutMs } = rt;

  describe.skipIf(rt.skip)("lifecycle", () => {
    let server: NatsServer;

    beforeAll(async () => {
      server = await startNatsServer({ runtime, startTimeoutMs });
    });

    afterAll(async () => {
      await server?.dispose();
    });

    it("starts a server on its own port that a client can use, with JetStream on", async () => {
      expect(server.port).toBeGreaterThan(0);
      expect(server.port).not.toBe(4222);
      expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
      expect(server.running).toBe(true);
      await rt.serving(server);
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

    it("keeps port, URL and file store across restart(), in a new process or container", async () => {
      const nc = await connect({ servers: server.url });
      const kv = await new Kvm(nc).create("survives-restart");
      await kv.put("k", "before");
      await nc.close();
      const { port, url, storeDir } = server;
      const before = await rt.serving(server);

      await server.restart();

      expect(server.port).toBe(port);
      expect(server.url).toBe(url);
      expect(server.storeDir).toBe(storeDir);
      await rt.replaced(server, before, await rt.serving(server));
      const nc2 = await connect({ servers: server.url });
      try {
        const kv2 = await new Kvm(nc2).open("survives-restart");
        expect((await kv2.get("k"))?.string()).toBe("before");
      } finally {
        await nc2.close();
      }
    });

    it("restarts after kill(), with the data back, and a live client reconnects to the same URL", async () => {
      const nc = await connect({ servers: server.url, reconnectTimeWait: 100 });
      try {
        const kv = await new Kvm(nc).create("survives-kill");
        await kv.put("k", "acked");
        const was = await rt.serving(server);
        const reconnected = nextReconnect(nc, rt.reconnectMs);

        await server.kill();
        expect(server.running).toBe(false);
        await rt.gone(server, was);

        await server.restart();
        await reconnected;
        expect((await kv.get("k"))?.string()).toBe("acked");
      } finally {
        await nc.close();
      }
    });

    it("stop() is idempotent, leaves nothing running, and keeps the store for restart()", async () => {
      const was = await rt.serving(server);
      const first = server.stop();
      const second = server.stop();
      expect(second).toBe(first);
      await first;
      expect(server.running).toBe(false);
      await rt.gone(server, was);
      expect(existsSync(server.storeDir)).toBe(true);

      await server.restart();
      expect(server.running).toBe(true);
      expect(server.stop()).not.toBe(first);
      await server.stop();
    });
  });

  describe.skipIf(rt.skip)("options and disposal", () => {
    it("applies maxPayload, and dispose() leaves nothing running and removes the store", async () => {
      const server = await startNatsServer({ runtime, maxPayload: 64 * 1024, startTimeoutMs });
      const was = await rt.serving(server);
      const nc = await connect({ servers: server.url });
      expect(nc.info?.max_payload).toBe(64 * 1024);
      await nc.close();

      const disposing = server.dispose();
      expect(server.dispose()).toBe(disposing);
      await disposing;
      await rt.gone(server, was);
      expect(existsSync(server.storeDir)).toBe(false);
      await expect(server.restart()).rejects.toMatchObject({ code: "DISPOSED" });
    });

    it("runs a caller's configuration file as it is, reading $NAME from env; adds its own text after it", async () => {
      const { dir, file } = aliceConf();
      try {
        for (const extra of [{}, { maxPayload: 32 * 1024 }]) {
          await using server = await startNatsServer({
            runtime,
            configFile: file,
            env: { ALICE_PASSWORD: "s3cret" },
            startTimeoutMs,
            ...extra,
          });
          await expect(
            connect({ servers: server.url, user: "alice", pass: "wrong" }),
          ).rejects.toThrow(/Authorization/);
          const nc = await connect({ servers: server.url, user: "alice", pass: "s3cret" });
          try {
            expect(nc.info?.jetstream).toBe(true);
            expect(nc.info?.max_payload).toBe(
              "maxPayload" in extra ? extra.maxPayload : 1024 * 1024,
            );
          } finally {
            await nc.close();
          }
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("runs without JetStream when asked", async () => {
      await using server = await startNatsServer({ runtime, jetstream: false, startTimeoutMs });
      const nc = await connect({ servers: server.url });
      try {
        expect(nc.info?.jetstream ?? false).toBe(false);
      } finally {
        await nc.close();
      }
    });

    it("cleans up on `await using`", async () => {
      let server: NatsServer | undefined;
      let was: number | string = 0;
      let storeDir = "";
      {
        await using started = await startNatsServer({ runtime, startTimeoutMs });
        server = started;
        was = await rt.serving(started);
        storeDir = started.storeDir;
      }
      await rt.gone(server, was);
      expect(existsSync(storeDir)).toBe(false);
    });
  });
});

describe("the process runtime only", () => {
  it("says which variable a configuration file lacks when it cannot start", async () => {
    const { dir, file } = aliceConf();
    try {
      await expect(startNatsServer({ runtime: "process", configFile: file })).rejects.toMatchObject(
        { code: "START_FAILED", message: expect.stringContaining("ALICE_PASSWORD") },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(noEngine)("the container runtime only (needs NATSMESH_DOCKER_HOST)", () => {
  it("reports an image that cannot start as START_FAILED, leaving nothing behind", async () => {
    const err = await startNatsServer({
      runtime: "container",
      image: "natsmesh-no-such-image:never",
      startTimeoutMs: 15_000,
    }).catch((e) => e);
    expect(err).toMatchObject({ name: "NatsTestingError", code: "START_FAILED" });
    expect(err.message).toContain("natsmesh-no-such-image:never");
  });
});
