import { existsSync, statSync } from "node:fs";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { type InstanceRecord, presenceBucket } from "@natsmesh/protocol";
import {
  cleanup,
  freePorts,
  killAllProcesses,
  type NatsServer,
  setup,
  startNatsServer,
  type TestProcess,
  type TestSetup,
  uniquePrefix,
  waitUntil,
} from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { closedPort, removeTempDirs, runCli, startCli, tempDir } from "./cli-process.js";

let t: TestSetup;
beforeAll(async () => {
  t = await setup({ tag: "up" });
});
afterEach(killAllProcesses);
afterAll(async () => {
  removeTempDirs();
  await cleanup(t);
});

interface Ready {
  type: "ready";
  pid: number;
  prefix: string;
  nats: { url: string; source: string; pid?: number; store?: string };
  dashboard: string;
  auth: boolean;
  token?: string;
  tokenFile?: string;
  presenceKeys?: string;
  instances: InstanceRecord[];
}

interface Call {
  type: "call";
  call: string;
  reply?: unknown;
  error?: { code: string };
  ms: number;
}

/** The JSON lines of `up --json` so far. */
function lines(up: TestProcess): { type: string }[] {
  return up.stdout.map((l) => JSON.parse(l) as { type: string });
}

async function ready(up: TestProcess): Promise<Ready> {
  const at = await up.waitFor(/^\{"type":"ready"/, { timeoutMs: 45_000 });
  return JSON.parse(up.stdout[at]!) as Ready;
}

/** Whether a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "EPERM";
  }
}

describe("natsmesh up on NATS_URL", () => {
  it("runs the examples, calls them, serves the dashboard and drains on SIGTERM", async () => {
    const prefix = uniquePrefix("up");
    // An agent's metrics port in the environment is for one agent: up's five examples must not
    // all take it (the second would fail to bind).
    const [metricsPort] = await freePorts(1);
    const up = startCli(["up", "--json", "--port", "0", "--prefix", prefix, "--dir", tempDir()], {
      NATS_URL: t.server.url,
      MESH_METRICS_PORT: String(metricsPort),
    });
    const r = await ready(up);
    expect(r).toMatchObject({ pid: up.pid, prefix, nats: { url: t.server.url, source: "given" } });
    expect(r.auth).toBe(false);
    expect(r.instances.map((i) => i.service).sort()).toEqual([
      "echo",
      "echo",
      "greeter",
      "orders",
      "slow",
    ]);
    const echo = r.instances.filter((i) => i.service === "echo");
    expect(echo.map((i) => i.weight).sort()).toEqual([1, 3]);
    expect(r.instances.find((i) => i.service === "orders")?.events?.length).toBe(2);

    // The demo calls.
    await up.waitFor(/"call":"orders\.place/, { timeoutMs: 30_000 });
    const calls = lines(up).filter((l): l is Call => l.type === "call");
    const byCall = (prefix: string) => calls.find((c) => c.call.startsWith(prefix))!;
    expect(byCall('greeter.hello \'{"name":"natsmesh"}\'').reply).toEqual({
      greeting: "Hello, natsmesh!",
    });
    expect(byCall("greeter.hello '{\"name\":42}'").error?.code).toBe("BAD_REQUEST");
    const spread = byCall("echo.say").reply as { weight: number; calls: number }[];
    expect(spread.reduce((n, s) => n + s.calls, 0)).toBe(60);
    // 60 draws at 1:3: the weight-1 instance gets 30 or more with a chance of about 1e-5
    // (a queue group, which ignores weights, would split them evenly).
    const [light, heavy] = [1, 3].map((w) => spread.find((s) => s.weight === w)!.calls);
    expect(heavy).toBeGreaterThan(light!);
    expect(byCall("slow.work").error?.code).toBe("DEADLINE_EXCEEDED");
    expect(byCall("orders.place").reply).toMatchObject({ item: "tea", quantity: 1 });

    // The dashboard, and a call from another process, as the suggestions say.
    expect(r.dashboard).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/dashboard\/$/);
    expect(r.dashboard).not.toContain(":8222/");
    expect((await fetch(r.dashboard)).status).toBe(200);
    const called = await runCli(["call", "greeter.hello", '{"name":"you"}', "--json"], {
      NATS_URL: t.server.url,
      MESH_PREFIX: prefix,
    });
    expect(called.stdout).toBe('{"greeting":"Hello, you!"}');

    expect(await up.stop("SIGTERM", 30_000)).toBe(0);
    expect(lines(up).at(-1)).toEqual({ type: "stopped" });
    // Every instance drained and said down; the registry took them out before it stopped.
    const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    expect(keys).toEqual([]);
    await expect(fetch(r.dashboard)).rejects.toThrow();
  }, 90_000);

  it("prints the table, the calls and what to try next for people; SIGINT stops it", async () => {
    const prefix = uniquePrefix("up");
    const up = startCli(["up", "--port", "0", "--prefix", prefix, "--dir", tempDir()], {
      NATS_URL: t.server.url,
    });
    await up.waitFor(/^Presence changes:$/, { timeoutMs: 60_000 });
    const text = up.stdout.join("\n");
    expect(text).toContain(
      `natsmesh up: NATS ${t.server.url} (from NATS_URL / --server), prefix ${prefix}`,
    );
    expect(text).toMatch(/^natsmesh up: dashboard http:\/\/127\.0\.0\.1:\d+\/dashboard\/$/m);
    expect(text).toMatch(/^SERVICE +ID +VERSION +WEIGHT +STATUS/m);
    expect(text.match(/^echo +\S+ +1\.0\.0 +[13] +ready/gm)).toHaveLength(2);
    expect(text).toMatch(/^orders .*order\.created,order\.\*\(broadcast\)$/m);
    expect(text).toMatch(
      /natsmesh call greeter\.hello '\{"name":"natsmesh"\}' +→ \{"greeting":"Hello, natsmesh!"\}/,
    );
    expect(text).toMatch(/→ BAD_REQUEST: name must be/);
    expect(text).toContain(`export NATS_URL=${t.server.url} MESH_PREFIX=${prefix}`);
    expect(text).toContain(`npx natsmesh call greeter.hello '{"name":"you"}'`);
    expect(text).toContain("npx natsmesh watch");
    expect(text).toContain("npx natsmesh agent examples/services/echo.mjs --weight 5");
    expect(text).toContain(`nats req ${prefix}.svc.greeter.hello '{"name":"you"}'`);

    // A new instance shows up live.
    const agent = startCli(["agent", "examples/services/echo.mjs", "--weight", "5"], {
      NATS_URL: t.server.url,
      MESH_PREFIX: prefix,
    });
    await up.waitFor(/ {2}up {4} {2}echo {2}\S+ {2}v1\.0\.0 weight=5 ready/, { timeoutMs: 15_000 });
    expect(await agent.stop()).toBe(0);
    await up.waitFor(/ {2}down {2} {2}echo /, { timeoutMs: 15_000 });

    expect(await up.stop("SIGINT", 30_000)).toBe(0);
    expect(up.stdout.at(-1)).toBe("natsmesh up: stopped");
    expect(up.stderr).toEqual([]);
  }, 90_000);

  it("fails with one line when NATS_URL's server has no JetStream", async () => {
    await using plain = await startNatsServer({ jetstream: false });
    const r = await runCli(
      ["up", "--port", "0", "--dir", tempDir()],
      { NATS_URL: plain.url },
      30_000,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      "natsmesh: JetStream is not enabled on this NATS server (run nats-server with -js).",
    );
    expect(r.stdout).toBe("");
  });
});

describe("natsmesh up without NATS_URL", () => {
  it("starts nats-server with its store in --dir, and leaves no process behind", async () => {
    const dir = tempDir();
    const port = await closedPort();
    const up = startCli(
      ["up", "--json", "--no-demo", "--nats-port", String(port), "--port", "0", "--dir", dir],
      {},
    );
    const r = await ready(up);
    expect(r.nats).toMatchObject({
      url: `nats://127.0.0.1:${port}`,
      source: "started",
      store: join(dir, "nats"),
    });
    const natsPid = r.nats.pid!;
    expect(alive(natsPid)).toBe(true);
    expect(existsSync(join(dir, "nats", "jetstream"))).toBe(true);
    expect(lines(up).some((l) => l.type === "call")).toBe(false);
    expect(await up.stop("SIGTERM", 30_000)).toBe(0);
    expect(await waitUntil(() => !alive(natsPid), { timeoutMs: 5_000 })).toBe(true);
    expect(alive(r.pid)).toBe(false);
  }, 90_000);

  it("uses the JetStream server that answers at --nats-port", async () => {
    await using local = await startNatsServer();
    const up = startCli(
      [
        ...["up", "--json", "--no-demo", "--nats-port", String(local.port)],
        ...["--port", "0", "--prefix", uniquePrefix("up"), "--dir", tempDir()],
      ],
      {},
    );
    const r = await ready(up);
    expect(r.nats).toEqual({ url: `nats://127.0.0.1:${local.port}`, source: "local" });
    expect(await up.stop("SIGTERM", 30_000)).toBe(0);
  }, 90_000);

  it("starts its own nats-server on a free port when --nats-port has no JetStream", async () => {
    await using plain = await startNatsServer({ jetstream: false });
    const up = startCli(
      [
        ...["up", "--json", "--no-demo", "--nats-port", String(plain.port)],
        ...["--port", "0", "--dir", tempDir()],
      ],
      {},
    );
    const r = await ready(up);
    expect(r.nats.source).toBe("started");
    expect(r.nats.url).not.toBe(`nats://127.0.0.1:${plain.port}`);
    expect(up.stderr.join("\n")).toContain(
      `the NATS server at 127.0.0.1:${plain.port} has no JetStream (run it with -js to use it); starting nats-server on a free port`,
    );
    expect(await up.stop("SIGTERM", 30_000)).toBe(0);
    expect(await waitUntil(() => !alive(r.nats.pid!), { timeoutMs: 5_000 })).toBe(true);
  }, 90_000);

  it("starts its own nats-server on a free port when --nats-port holds something silent", async () => {
    // A listener that accepts and never speaks: no NATS INFO ever comes.
    const sockets: Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      const up = startCli(
        [
          ...["up", "--json", "--no-demo", "--nats-port", String(port)],
          ...["--port", "0", "--dir", tempDir()],
        ],
        {},
      );
      const r = await ready(up);
      expect(r.nats.source).toBe("started");
      expect(r.nats.url).not.toBe(`nats://127.0.0.1:${port}`);
      expect(up.stderr.join("\n")).toContain(
        `something at 127.0.0.1:${port} did not answer as a NATS server within 1.5 s; starting nats-server on a free port`,
      );
      expect(await up.stop("SIGTERM", 30_000)).toBe(0);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  }, 90_000);

  it("says exactly how to get NATS when nothing answers and nats-server is not installed", async () => {
    const bin = tempDir();
    const r = await runCli(
      ["up", "--nats-port", String(await closedPort()), "--dir", tempDir()],
      { PATH: bin },
      30_000,
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(
      /^natsmesh: no NATS server answers at 127\.0\.0\.1:\d+, and nats-server is not on the PATH/,
    );
    for (const hint of [
      "sudo apt-get install nats-server",
      "brew install nats-server",
      "nats-server -js",
      "docker compose -f docker/compose.yml up",
      "NATS_URL=nats://host:4222 natsmesh up",
    ]) {
      expect(r.stderr).toContain(hint);
    }
  });
});

describe("natsmesh up next to a NATS server that wants credentials", () => {
  const PASSWORD = "pUpLocal42";
  let secured: NatsServer;
  beforeAll(async () => {
    // JetStream on: with the right credentials it is a server up can run the mesh on.
    secured = await startNatsServer({
      config: `authorization { user: alice, password: ${PASSWORD} }`,
    });
  });
  afterAll(() => cleanup(secured));

  const args = () => [
    ...["up", "--json", "--no-demo", "--nats-port", String(secured.port)],
    ...["--port", "0", "--prefix", uniquePrefix("up"), "--dir", tempDir()],
  ];

  it("without credentials, says the server wants them and starts its own on a free port", async () => {
    const up = startCli(args(), {});
    const r = await ready(up);
    expect(r.nats.source).toBe("started");
    expect(r.nats.url).not.toBe(`nats://127.0.0.1:${secured.port}`);
    expect(up.stderr.join("\n")).toContain(
      `the NATS server at 127.0.0.1:${secured.port} wants credentials, and none were given ` +
        "(to run the mesh on it: NATS_USER and NATS_PASSWORD, NATS_TOKEN, NATS_CREDS or " +
        "NATS_NKEY, or their flags); starting nats-server on a free port",
    );
    expect(await up.stop("SIGTERM", 30_000)).toBe(0);
    expect(await waitUntil(() => !alive(r.nats.pid!), { timeoutMs: 5_000 })).toBe(true);
  }, 90_000);

  it("with its credentials, runs the mesh on it", async () => {
    const up = startCli(args(), { NATS_USER: "alice", NATS_PASSWORD: PASSWORD });
    const r = await ready(up);
    expect(r.nats).toEqual({ url: `nats://127.0.0.1:${secured.port}`, source: "local" });
    expect(await up.stop("SIGTERM", 30_000)).toBe(0);
    expect(up.output()).not.toContain(PASSWORD);
  }, 90_000);

  it("with credentials it refuses, says so and exits 1, without the password", async () => {
    const r = await runCli(args(), { NATS_USER: "alice", NATS_PASSWORD: "pWrong7" }, 30_000);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(
      new RegExp(
        `^natsmesh: the NATS server at 127\\.0\\.0\\.1:${secured.port} refused the NATS credentials given`,
      ),
    );
    expect(r.stderr).not.toContain("pWrong7");
  });

  it("says what it found, not that nothing answers, when nats-server is not installed", async () => {
    const r = await runCli(args(), { PATH: tempDir() }, 30_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `the NATS server at 127.0.0.1:${secured.port} wants credentials, and none were given`,
    );
    expect(r.stderr).toContain("and nats-server is not on the PATH to start another.");
    expect(r.stderr).not.toContain("no NATS server answers");
  });

  it("on NATS_URL without credentials, says the server wants them (exit 1)", async () => {
    const r = await runCli(["up", "--port", "0", "--dir", tempDir()], { NATS_URL: secured.url });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/wants credentials \(authorization violation\): give them with/);
  });
});

describe("natsmesh up --auth", () => {
  it("runs everything with tokens, and prints a caller token that natsmesh call accepts", async () => {
    const prefix = uniquePrefix("up");
    const dir = tempDir();
    const up = startCli(
      ["up", "--auth", "--json", "--port", "0", "--prefix", prefix, "--dir", dir],
      {
        NATS_URL: t.server.url,
      },
    );
    const r = await ready(up);
    expect(r.auth).toBe(true);
    expect(r.tokenFile).toBe(join(dir, "keys", "caller.jwt"));
    expect(statSync(join(dir, "keys", "signing.private.jwk.json")).mode & 0o777).toBe(0o600);
    expect(statSync(r.tokenFile!).mode & 0o777).toBe(0o600);
    // The registry signs records with a key of its own; callers get its public half.
    expect(statSync(join(dir, "keys", "presence.private.jwk.json")).mode & 0o777).toBe(0o600);
    expect(r.presenceKeys).toBe(join(dir, "keys", "presence-jwks.json"));
    // Every instance announced with a token that verifies: all five are in the bucket.
    expect(r.instances).toHaveLength(5);
    await up.waitFor(/"call":"orders\.place/, { timeoutMs: 30_000 });
    const calls = lines(up).filter((l): l is Call => l.type === "call");
    expect(
      calls.find((c) => c.call.startsWith('greeter.hello \'{"name":"natsmesh"}\''))!.reply,
    ).toEqual({
      greeting: "Hello, natsmesh!",
    });
    expect(calls.find((c) => c.call.startsWith("orders.place"))!.error).toBeUndefined();

    const env = { NATS_URL: t.server.url, MESH_PREFIX: prefix };
    const refused = await runCli(["call", "greeter.hello", '{"name":"x"}'], env);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain("UNAUTHENTICATED");
    const flag = await runCli(
      ["call", "greeter.hello", '{"name":"x"}', "--token", r.token!, "--json"],
      env,
    );
    expect(flag.stdout).toBe('{"greeting":"Hello, x!"}');
    const file = await runCli(["call", "echo.say", "1", "--json"], {
      ...env,
      MESH_TOKEN_FILE: r.tokenFile!,
    });
    expect(file.stdout).toBe("1");
    // What the printed exports give another terminal: the token and the presence keys.
    const exported = await runCli(["call", "echo.say", "3", "--balance", "weighted", "--json"], {
      ...env,
      MESH_TOKEN_FILE: r.tokenFile!,
      MESH_PRESENCE_KEYS: r.presenceKeys!,
    });
    expect([exported.stderr, exported.stdout]).toEqual(["", "3"]);
    const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
    for await (const key of await kv.keys()) {
      expect((await kv.get(key))?.json<{ sig?: unknown }>().sig, key).toBeDefined();
    }
    expect(await up.stop("SIGTERM", 30_000)).toBe(0);

    // A second run keeps the signing key: the token printed before still verifies.
    const again = startCli(
      ["up", "--auth", "--json", "--no-demo", "--port", "0", "--prefix", prefix, "--dir", dir],
      {
        NATS_URL: t.server.url,
      },
    );
    await ready(again);
    const old = await runCli(["call", "echo.say", "2", "--token", r.token!, "--json"], env);
    expect(old.stdout).toBe("2");
    expect(await again.stop("SIGTERM", 30_000)).toBe(0);
  }, 120_000);
});
