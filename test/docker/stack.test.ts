import { Kvm, KvWatchInclude } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { isMeshError, type JsonWebKeySet } from "@natsmesh/protocol";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import { cleanup, spawnProcess, until, waitUntil } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { violations } from "../nats-permissions.js";
import {
  buildImage,
  docker,
  engine,
  ports,
  prepareStack,
  ROOT,
  SKIP_MESSAGE,
  type Stack,
} from "./stack.js";

// The compose stacks of docker/, run by a real Docker engine: built from docker/Dockerfile,
// brought up with a host-networking override, and checked from this machine through the SDK
// and the CLI. Needs NATSMESH_DOCKER_HOST (test/docker/engine.sh); skipped without it.
if (engine === undefined) console.info(SKIP_MESSAGE);

const IMAGE = "natsmesh:e2e";
const CLI = `${ROOT}packages/cli/dist/bin.js`;
/** Bound on `up`: the first start also waits for every healthcheck. */
const UP_TIMEOUT_MS = 5 * 60_000;
const EXAMPLES = { echo: 2, greeter: 1, slow: 1 } as const;

/** The keys of the presence bucket; fails while the bucket does not exist. */
async function listKeys(nc: NatsConnection): Promise<string[]> {
  const kv = await new Kvm(nc).open("mesh_presence");
  const keys: string[] = [];
  for await (const key of await kv.keys()) keys.push(key);
  return keys;
}

/** Waits until the presence bucket holds the example instances, and returns its keys. */
async function presenceKeys(nc: NatsConnection, timeoutMs = 90_000): Promise<string[]> {
  let keys: string[] = [];
  const complete = await waitUntil(
    async () => {
      // Until a registry has created the bucket, listing its keys fails: keep waiting.
      const listed = await listKeys(nc).catch(() => undefined);
      if (listed === undefined) return false;
      keys = listed;
      return Object.entries(EXAMPLES).every(
        ([service, n]) => keys.filter((k) => k.startsWith(`${service}.`)).length === n,
      );
    },
    { timeoutMs, intervalMs: 500 },
  );
  expect(complete, `presence keys: ${keys.join(", ")}`).toBe(true);
  return keys;
}

/** One call to each example service, checked. */
async function callEachService(mesh: Mesh): Promise<void> {
  expect(await mesh.request("echo", "say", { hello: "docker" }, { timeout: 10_000 })).toEqual({
    hello: "docker",
  });
  const greeting = (await mesh.request(
    "greeter",
    "hello",
    { name: "docker" },
    { timeout: 10_000 },
  )) as { greeting: string };
  expect(greeting.greeting).toContain("docker");
  await expect(
    mesh.request("slow", "work", { ms: 10 }, { timeout: 10_000 }),
  ).resolves.toBeDefined();
}

/** Whether the image has `natsmesh agent` and the example services (decided after the build). */
let agents = false;
const NO_AGENTS =
  "the image has no `natsmesh agent` or no examples/services/*.mjs yet: only NATS and the " +
  "registries run, and the checks that need the example agents are skipped";

/** The services to bring up: all, or those that do not need `natsmesh agent`. */
function services(all: string[]): string[] {
  return agents ? [] : all.filter((s) => s.startsWith("nats") || s.startsWith("registry"));
}

beforeAll(async () => {
  if (engine === undefined) return;
  const base = process.env.NATSMESH_DOCKER_NODE_IMAGE || "node:20-bookworm-slim";
  const started = Date.now();
  await buildImage(IMAGE, base);
  console.info(`built ${IMAGE} on ${base} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  agents = await docker([
    "run",
    "--rm",
    "--network",
    "host",
    "--entrypoint",
    "sh",
    IMAGE,
    "-c",
    "natsmesh agent --help >/dev/null && ls examples/services/echo.mjs examples/services/greeter.mjs examples/services/slow.mjs",
  ]).then(
    () => true,
    () => false,
  );
  if (!agents) console.info(NO_AGENTS);
}, 25 * 60_000);

describe.skipIf(engine === undefined)("docker/compose.yml on a Docker engine", () => {
  let stack: Stack;
  let url: string;
  let nc: NatsConnection;
  let mesh: Mesh;

  beforeAll(async () => {
    const [nats = "", monitor = "", registry = ""] = await ports(3);
    url = `nats://127.0.0.1:${nats}`;
    stack = await prepareStack(
      `natsmesh-e2e-${process.pid}`,
      ["docker/compose.yml", "test/docker/compose.host.yml"],
      {
        NATSMESH_IMAGE: IMAGE,
        NATSMESH_DOCKER_NATS_IMAGE: process.env.NATSMESH_DOCKER_NATS_IMAGE || "nats:2.10-alpine",
        E2E_NATS_PORT: nats,
        E2E_NATS_MONITOR_PORT: monitor,
        E2E_REGISTRY_PORT: registry,
      },
    );
    const started = Date.now();
    await stack.compose(
      ["up", "-d", "--no-build", ...services(["nats", "registry"])],
      UP_TIMEOUT_MS,
    );
    console.info(`compose up (single server) in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    nc = await connect({ servers: url, maxReconnectAttempts: -1 });
    mesh = await connectMesh({ servers: url });
  }, UP_TIMEOUT_MS + 60_000);

  afterAll(async () => {
    await cleanup(nc, mesh);
    await stack?.compose(["down", "--volumes", "--timeout", "5"]).catch(() => {});
  }, 120_000);

  it("puts every example service in the presence bucket, and each answers a call", async (ctx) => {
    if (!agents) ctx.skip();
    const keys = await presenceKeys(nc);
    expect(keys).toHaveLength(4);
    await until("slow in the presence cache", () => mesh.instances("slow").length === 1);
    const weights = mesh
      .instances("echo")
      .map((i) => i.weight)
      .sort();
    expect(weights).toEqual([1, 3]);
    await callEachService(mesh);
  });

  it("natsmesh watch sees an instance leave when its container stops", async (ctx) => {
    if (!agents) ctx.skip();
    const lightest = mesh.instances("echo").find((i) => i.weight === 1);
    expect(lightest).toBeDefined();
    const watch = spawnProcess(process.execPath, [CLI, "watch", "echo", "--json"], {
      env: { NATS_URL: url },
      unset: ["MESH_PREFIX", "MESH_TOKEN"],
    });
    try {
      await watch.waitFor((line) => line.includes(lightest!.id), { timeoutMs: 20_000 });
      await stack.compose(["stop", "--timeout", "10", "echo-w1"]);
      const at = await watch.waitFor(
        (line) => {
          const event = JSON.parse(line) as { type: string; id?: string };
          return event.type === "down" && event.id === lightest!.id;
        },
        { timeoutMs: 30_000 },
      );
      expect(at).toBeGreaterThan(0);
      // The other echo instance still answers.
      await expect(mesh.request("echo", "say", 1, { timeout: 10_000 })).resolves.toBe(1);
    } finally {
      await watch.stop();
    }
  });

  it("down removes every container", async () => {
    expect((await stack.containers()).length).toBe(agents ? 6 : 2);
    await stack.compose(["down", "--volumes", "--timeout", "10"], 120_000);
    expect(await stack.containers()).toEqual([]);
  });
});

describe.skipIf(engine === undefined)(
  "docker/compose.yml's auth profile on a Docker engine",
  () => {
    let stack: Stack;
    let url: string;
    let dashboard: string;
    let mesh: Mesh | undefined;

    beforeAll(async () => {
      const [nats = "", monitor = "", registry = "", natsAuth = "", authMonitor = "", dash = ""] =
        await ports(6);
      url = `nats://127.0.0.1:${natsAuth}`;
      dashboard = `http://127.0.0.1:${dash}/dashboard/`;
      stack = await prepareStack(
        `natsmesh-e2e-auth-${process.pid}`,
        ["docker/compose.yml", "test/docker/compose.host.yml"],
        {
          NATSMESH_IMAGE: IMAGE,
          NATSMESH_DOCKER_NATS_IMAGE: process.env.NATSMESH_DOCKER_NATS_IMAGE || "nats:2.10-alpine",
          E2E_NATS_PORT: nats,
          E2E_NATS_MONITOR_PORT: monitor,
          E2E_REGISTRY_PORT: registry,
          E2E_NATS_AUTH_PORT: natsAuth,
          E2E_NATS_AUTH_MONITOR_PORT: authMonitor,
          E2E_DASHBOARD_PORT: dash,
        },
        ["auth"],
      );
      const secure = [
        "secure-registry",
        "secure-dashboard",
        "secure-echo",
        "secure-greeter",
        "secure-slow",
      ];
      await stack.compose(
        ["up", "-d", "--no-build", ...(agents ? secure : ["secure-registry", "secure-dashboard"])],
        UP_TIMEOUT_MS,
      );
    }, UP_TIMEOUT_MS + 60_000);

    afterAll(async () => {
      await cleanup(mesh);
      await stack?.compose(["down", "--volumes", "--timeout", "5"]).catch(() => {});
    }, 120_000);

    it("issues tokens into a volume as the image's user, and the secure mesh needs them", async () => {
      // The keys service writes into named volumes as the non-root user: it is healthy only once
      // the caller token is there, and the secure services waited for that.
      const caller = (
        await stack.compose(["exec", "-T", "keys", "cat", "/var/lib/natsmesh/keys/caller.jwt"])
      ).trim();
      expect(caller.split(".")).toHaveLength(3);
      const logs = await stack.compose(["logs", "--no-color", "keys"]);
      expect(logs).toContain(caller);
      // The registry's presence key pair: the public half for callers in mesh-keys, the private
      // half (mode 0600) in mesh-presence, which the registry mounts and signs records with.
      const presenceKeys = JSON.parse(
        await stack.compose([
          "exec",
          "-T",
          "keys",
          "cat",
          "/var/lib/natsmesh/keys/presence-jwks.json",
        ]),
      ) as JsonWebKeySet;
      expect(presenceKeys.keys).toHaveLength(1);
      expect(presenceKeys.keys[0]).not.toHaveProperty("d");
      const mode = await stack.compose([
        ...["exec", "-T", "secure-registry", "stat", "-c", "%a"],
        "/var/lib/natsmesh/presence/presence.private.jwk.json",
      ]);
      expect(mode.trim()).toBe("600");
      if (!agents) return;
      // From the host as the README says: the caller's NATS user (the compose file's default
      // password), its inbox prefix, the caller token and the registry's public presence keys.
      mesh = await connectMesh({
        servers: url,
        credentials: { user: "caller", password: "callerLocalOnly" },
        inboxPrefix: "_INBOX_caller",
        token: caller,
        presence: { keys: presenceKeys },
      });
      const all = await waitUntil(
        () => ["echo", "greeter", "slow"].every((s) => mesh!.instances(s).length === 1),
        { timeoutMs: 90_000, intervalMs: 200 },
      );
      expect(all).toBe(true);
      // Every record the SDK took is signed: none was left out as unsigned or wrongly signed. (The
      // stack runs with LOG_LEVEL=silent, so the registry's own log cannot show it.)
      expect(mesh.presenceStats()).toMatchObject({ unsigned: 0, badSignature: 0 });
      const reply = (await mesh.request("greeter", "hello", { name: "secure" })) as {
        greeting: string;
      };
      expect(reply.greeting).toContain("secure");
      const refused = await mesh
        .request("echo", "say", 1, { token: "not-a-token" })
        .catch((err: unknown) => err);
      expect(isMeshError(refused) && refused.code).toBe("UNAUTHENTICATED");
      // nats-auth runs docker/nats/permissions.conf: an agent's user may not write presence nor
      // use the JetStream API to change a stream.
      const echo = await connect({
        servers: url,
        user: "echo-agent",
        pass: "echoAgentLocalOnly",
        inboxPrefix: "_INBOX_echo",
      });
      try {
        const denied = violations(echo);
        const targets = ["$KV.mesh_presence.echo.forged", "$JS.API.STREAM.DELETE.KV_mesh_presence"];
        for (const subject of targets) echo.publish(subject, "{}");
        await until("both publishes refused", () => denied.length >= targets.length, {
          timeoutMs: 10_000,
        });
        expect([...denied].sort()).toEqual(targets.map((t) => `publish ${t}`).sort());
      } finally {
        await echo.close();
      }
    }, 180_000);

    it("serves the secure mesh's dashboard, whose stats:* token and NATS user get the stats", async () => {
      // With a page open (its event stream), the dashboard asks every service for its stats as
      // the dashboard user, with the token the keys job issued it.
      const page = new AbortController();
      const opened = await waitUntil(
        async () =>
          (await fetch(`${dashboard}events`, { signal: page.signal }).catch(() => undefined))
            ?.status === 200,
        { timeoutMs: 90_000, intervalMs: 500 },
      );
      try {
        expect(opened, await stack.compose(["logs", "--no-color", "secure-dashboard"])).toBe(true);
        expect((await fetch(dashboard)).status).toBe(200);
        const state = async () =>
          (await (await fetch(`${dashboard}state`)).json()) as {
            prefix: string;
            services: Record<string, { stats: string }>;
          };
        expect((await state()).prefix).toBe("mesh");
        if (!agents) return;
        await expect
          .poll(
            async () =>
              Object.fromEntries(
                Object.entries((await state()).services).map(([k, v]) => [k, v.stats]),
              ),
            { timeout: 90_000, interval: 500 },
          )
          .toEqual({ echo: "ok", greeter: "ok", slow: "ok" });
      } finally {
        page.abort();
      }
    }, 200_000);

    it("down removes every container", async () => {
      await stack.compose(["down", "--volumes", "--timeout", "10"], 120_000);
      expect(await stack.containers()).toEqual([]);
    });
  },
);

describe.skipIf(engine === undefined)("docker/compose.cluster.yml on a Docker engine", () => {
  let stack: Stack;
  let urls: string[];
  let nc: NatsConnection;
  let mesh: Mesh;

  beforeAll(async () => {
    const p = await ports(12);
    const env: Record<string, string> = {
      NATSMESH_IMAGE: IMAGE,
      NATSMESH_DOCKER_NATS_IMAGE: process.env.NATSMESH_DOCKER_NATS_IMAGE || "nats:2.10-alpine",
    };
    for (const i of [1, 2, 3]) {
      env[`E2E_NATS_PORT_${i}`] = p[i - 1]!;
      env[`E2E_NATS_MONITOR_PORT_${i}`] = p[i + 2]!;
      env[`E2E_ROUTE_PORT_${i}`] = p[i + 5]!;
      env[`E2E_REGISTRY_PORT_${i}`] = p[i + 8]!;
    }
    urls = [1, 2, 3].map((i) => `nats://127.0.0.1:${env[`E2E_NATS_PORT_${i}`]}`);
    stack = await prepareStack(
      `natsmesh-e2e-cluster-${process.pid}`,
      ["docker/compose.cluster.yml", "test/docker/compose.cluster.host.yml"],
      env,
    );
    const started = Date.now();
    await stack.compose(
      [
        "up",
        "-d",
        "--no-build",
        ...services(["nats-1", "nats-2", "nats-3", "registry-1", "registry-2"]),
      ],
      UP_TIMEOUT_MS,
    );
    console.info(`compose up (cluster) in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    // This machine's client connects to nodes 2 and 3 only: node 1 is the one stopped below.
    nc = await connect({ servers: urls.slice(1), maxReconnectAttempts: -1 });
    mesh = await connectMesh({ servers: urls.slice(1) });
  }, UP_TIMEOUT_MS + 60_000);

  afterAll(async () => {
    await cleanup(nc, mesh);
    await stack?.compose(["down", "--volumes", "--timeout", "5"]).catch(() => {});
  }, 120_000);

  it("keeps the buckets on three replicas and answers calls", async () => {
    // The registries create both buckets, replicated on the three nodes.
    const replicas: Record<string, number> = {};
    const created = await waitUntil(
      async () => {
        for (const bucket of ["mesh_presence", "mesh_registry"]) {
          const kv = await new Kvm(nc).open(bucket);
          const status = await kv.status().catch(() => undefined);
          if (status === undefined) return false;
          replicas[bucket] = status.replicas;
        }
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(created).toBe(true);
    expect(replicas).toEqual({ mesh_presence: 3, mesh_registry: 3 });
    if (!agents) return;
    await presenceKeys(nc);
    await until("slow in the presence cache", () => mesh.instances("slow").length === 1);
    await callEachService(mesh);
  });

  it("calls and presence keep working when one NATS node's container stops", async (ctx) => {
    if (!agents) ctx.skip();
    await stack.compose(["stop", "--timeout", "10", "nats-1"]);
    // echo-w1, slow and registry-1 were connected to nats-1: they fail over to the others. An
    // instance whose heartbeats stopped would be evicted within one heartbeat timeout (3 s); none
    // may be, over three of them.
    const kv = await new Kvm(nc).open("mesh_presence");
    const deleted: string[] = [];
    // The KV stream may be electing a new leader right after the node stops, so opening the
    // watch (a JetStream consumer create) can time out: retry it, bounded.
    const updates = await openWatch(() => kv.watch({ include: KvWatchInclude.UpdatesOnly }));
    void (async () => {
      for await (const entry of updates) if (entry.operation !== "PUT") deleted.push(entry.key);
    })();
    const evicted = await waitUntil(() => deleted.length > 0, { timeoutMs: 9_000 });
    updates.stop();
    expect(evicted, `evicted: ${deleted.join(", ")}`).toBe(false);
    await presenceKeys(nc, 30_000);
    for (let i = 0; i < 5; i++) await callEachService(mesh);
    // ...and presence still follows changes: a stopped agent leaves the bucket.
    await stack.compose(["stop", "--timeout", "10", "greeter"]);
    await until(
      "greeter gone from the presence cache",
      () => {
        return mesh.instances("greeter").length === 0;
      },
      { timeoutMs: 30_000 },
    );
    // Listing keys creates a consumer, which can time out while the cluster is still settling.
    const keys = await openWatch(() => listKeys(nc));
    expect(keys.filter((k) => k.startsWith("greeter."))).toEqual([]);
  }, 120_000);

  it("down removes every container", async () => {
    await stack.compose(["down", "--volumes", "--timeout", "10"], 120_000);
    expect(await stack.containers()).toEqual([]);
  });
});

/**
 * Opens a KV watch (or lists keys), retrying while JetStream's API times out (a leader election),
 * for 20 s at most.
 */
async function openWatch<T>(open: () => Promise<T>): Promise<T> {
  const giveUp = Date.now() + 20_000;
  for (;;) {
    try {
      return await open();
    } catch (err) {
      if (Date.now() >= giveUp || (err as Error).name !== "TimeoutError") throw err;
    }
  }
}
