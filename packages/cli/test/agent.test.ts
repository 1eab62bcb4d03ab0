import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Subscription } from "@nats-io/nats-core";
import { generateKeyPair, type InstanceRecord, issueToken } from "@natsmesh/protocol";
import { withTimeout } from "@natsmesh/protocol/internal";
import { type Registry, startRegistry } from "@natsmesh/registry";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import {
  cleanup,
  killAllProcesses,
  setup,
  type TestProcess,
  type TestSetup,
  uniquePrefix,
  waitUntil,
} from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { closedPort, removeTempDirs, runCli, startCli, tempDir } from "./cli-process.js";

const SERVICES = fileURLToPath(new URL("../../../examples/services/", import.meta.url));
const module = (name: string) => join(SERVICES, `${name}.mjs`);

let t: TestSetup;
beforeAll(async () => {
  t = await setup({ tag: "agent" });
});
afterEach(killAllProcesses);
afterAll(async () => {
  removeTempDirs();
  await cleanup(t);
});

/** A log line (pino JSON) of an agent's stdout. */
function log(lines: readonly string[], index: number): Record<string, unknown> {
  return JSON.parse(lines[index]!) as Record<string, unknown>;
}

/** A registry and a mesh watching presence, on a fresh prefix; stopped after each test. */
let started: (Registry | Mesh)[] = [];
afterEach(async () => {
  await cleanup(...started);
  started = [];
});
async function mesh(options: { token?: string } = {}) {
  const prefix = uniquePrefix("agent");
  const registry = await startRegistry({ servers: t.server.url, prefix, heartbeatTimeoutMs: 600 });
  const m = await connectMesh({ servers: t.server.url, prefix, ...options });
  started.push(registry, m);
  const env = { NATS_URL: t.server.url, MESH_PREFIX: prefix, MESH_HEARTBEAT_MS: "200" };
  return { prefix, registry, mesh: m, env };
}

/** The instance record of the one instance of `service`, once it is in presence. */
async function instance(m: Mesh, service: string, proc: TestProcess): Promise<InstanceRecord> {
  const there = await waitUntil(() => m.instances(service).length === 1, { timeoutMs: 10_000 });
  expect(there, proc.output()).toBe(true);
  return m.instances(service)[0]!;
}

describe("natsmesh agent", () => {
  it("runs a module with its flags, logs JSON, answers calls and drains on SIGTERM", async () => {
    const { registry, mesh: m, env } = await mesh();
    const agent = startCli(
      [
        ...["agent", module("echo"), "--weight", "7", "--zone", "z1"],
        ...["--version", "2.0.0", "--concurrency", "3"],
      ],
      env,
    );
    const at = await agent.waitFor(/"msg":"agent started"/);
    const started = log(agent.stdout, at);
    expect(started).toMatchObject({
      level: 30,
      service: "echo",
      version: "2.0.0",
      weight: 7,
      zone: "z1",
      methods: ["say"],
      auth: false,
    });
    const record = await instance(m, "echo", agent);
    expect(record).toMatchObject({ id: started.instance, version: "2.0.0", weight: 7, zone: "z1" });
    expect(await m.request("echo", "say", { hi: 1 })).toEqual({ hi: 1 });

    expect(await agent.stop("SIGTERM")).toBe(0);
    expect(log(agent.stdout, agent.stdout.length - 1).msg).toBe("agent stopped");
    expect(agent.stderr).toEqual([]);
    // Its `down` went out before the connection closed: the registry removed it for that, not
    // by evicting a silent instance (which a time bound cannot tell apart on a loaded host).
    expect(await waitUntil(() => m.instances("echo").length === 0, { timeoutMs: 10_000 })).toBe(
      true,
    );
    expect(registry.stats.downs).toBe(1);
  });

  it("reads its settings from the environment; a flag wins over its variable", async () => {
    const { mesh: m, env } = await mesh();
    const settings = {
      ...env,
      MESH_WEIGHT: "5",
      MESH_ZONE: "z2",
      MESH_VERSION: "3.1.0",
      MESH_CONCURRENCY: "",
    };
    const agent = startCli(["agent", module("echo"), "--weight", "9"], settings);
    await agent.waitFor(/"msg":"agent started"/);
    expect(await instance(m, "echo", agent)).toMatchObject({
      weight: 9,
      zone: "z2",
      version: "3.1.0",
    });
    expect(await agent.stop("SIGINT")).toBe(0);
  });

  it("serves Prometheus metrics on --metrics-port, or on MESH_METRICS_PORT", async () => {
    const { mesh: m, env } = await mesh();
    // One after the other: each call must reach the agent whose endpoint is read.
    const runs = [
      () =>
        startCli(
          ["agent", module("echo"), "--metrics-port", "0", "--metrics-host", "127.0.0.1"],
          env,
        ),
      () => startCli(["agent", module("echo")], { ...env, MESH_METRICS_PORT: "0" }),
    ];
    for (const run of runs) {
      const agent = run();
      const started = log(agent.stdout, await agent.waitFor(/"msg":"agent started"/));
      expect(started.metrics).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      await instance(m, "echo", agent);
      await m.request("echo", "say", { hi: 1 }, { balance: "random" });
      const text = await (await fetch(started.metrics as string)).text();
      expect(text).toMatch(
        /rpc_server_call_duration_count\{[^}]*rpc_method="echo\/say"[^}]*\} 1\n/,
      );
      expect(await agent.stop()).toBe(0);
      await waitUntil(() => m.instances("echo").length === 0, { timeoutMs: 5000 });
    }
  });

  it("serves no metrics without --metrics-port or MESH_METRICS_PORT", async () => {
    const { env } = await mesh();
    const agent = startCli(["agent", module("echo")], env);
    const started = log(agent.stdout, await agent.waitFor(/"msg":"agent started"/));
    expect(started).not.toHaveProperty("metrics");
    expect(await agent.stop()).toBe(0);
  });

  it("announces the module's own version without a flag or variable", async () => {
    const { mesh: m, env } = await mesh();
    const agent = startCli(["agent", module("slow")], env);
    await agent.waitFor(/"msg":"agent started"/);
    expect(await instance(m, "slow", agent)).toMatchObject({ version: "1.0.0", weight: 100 });
    expect(await agent.stop()).toBe(0);
  });

  it("lets calls in flight finish when stopped with SIGINT", async () => {
    const { prefix, mesh: m, env } = await mesh();
    const agent = startCli(["agent", module("slow")], env);
    await agent.waitFor(/"msg":"agent started"/);
    // Heartbeats carry the calls in flight: the signal goes once the call is running.
    let sub: Subscription | undefined;
    const running = new Promise<void>((resolve) => {
      sub = t.nc.subscribe(`${prefix}.presence.slow.*`, {
        callback: (_err, msg) => {
          if ((msg.json() as { inflight?: number }).inflight === 1) resolve();
        },
      });
    });
    const call = m.request<{ slept: number }>("slow", "work", { ms: 700 }, { timeout: 10_000 });
    await withTimeout(running, 5_000, "a heartbeat with the call in flight");
    sub?.unsubscribe();
    expect(agent.child.kill("SIGINT")).toBe(true);
    expect((await call).slept).toBeGreaterThanOrEqual(699);
    expect(await agent.exit()).toBe(0);
    expect(agent.stdout.some((l) => l.includes("stopping on signal: draining"))).toBe(true);
  });

  it("gives handlers ctx.mesh: greeter's nested call and orders' emit work", async () => {
    const { mesh: m, env } = await mesh();
    const echo = startCli(["agent", module("echo")], env);
    const greeter = startCli(["agent", module("greeter")], env);
    const orders = startCli(["agent", module("orders")], env);
    for (const p of [echo, greeter, orders]) await p.waitFor(/"msg":"agent started"/);
    expect(await m.request("greeter", "hello", { name: "cli" })).toEqual({
      greeting: "Hello, cli!",
    });
    const order = await m.request<{ id: string }>("orders", "place", { item: "tea" });
    const shipped = await waitUntil(
      async () =>
        (await m.request<{ shipped: string[] }>("orders", "status")).shipped.includes(order.id),
      { timeoutMs: 10_000 },
    );
    expect(shipped, orders.output()).toBe(true);
    for (const p of [echo, greeter, orders]) expect(await p.stop()).toBe(0);
  });

  it("with --jwks and --token-file, announces with its token and refuses callers without one", async () => {
    const dir = tempDir();
    const pair = await generateKeyPair();
    const jwks = join(dir, "jwks.json");
    writeFileSync(jwks, JSON.stringify({ keys: [pair.publicJwk] }));
    const sign = (sub: string, scope: string[]) =>
      issueToken({ key: pair.privateJwk, sub, scope, ttl: 600 });
    const tokenFile = join(dir, "echo.jwt");
    writeFileSync(tokenFile, `${await sign("echo", ["announce:echo"])}\n`);
    const caller = await sign("caller", ["echo.*"]);

    const prefix = uniquePrefix("agent");
    const registry = await startRegistry({
      servers: t.server.url,
      prefix,
      auth: { jwks, signingKey: pair.privateJwk },
    });
    const m = await connectMesh({ servers: t.server.url, prefix, token: caller });
    started.push(registry, m);
    const agent = startCli(["agent", module("echo"), "--jwks", jwks, "--token-file", tokenFile], {
      NATS_URL: t.server.url,
      MESH_PREFIX: prefix,
    });
    const at = await agent.waitFor(/"msg":"agent started"/);
    expect(log(agent.stdout, at)).toMatchObject({ auth: true });
    // The registry accepts only an `up` whose token verifies with announce:echo.
    await instance(m, "echo", agent);
    expect(await m.request("echo", "say", 1)).toBe(1);
    await expect(m.request("echo", "say", 1, { token: "not-a-token" })).rejects.toMatchObject({
      code: "UNAUTHENTICATED",
    });
    expect(await agent.stop()).toBe(0);
  });
});

describe("natsmesh agent errors", () => {
  /** Writes a module into a temporary directory and returns its path. */
  function write(name: string, text: string): string {
    const path = join(tempDir(), name);
    writeFileSync(path, text);
    return path;
  }

  it.each([
    [
      "no default export",
      "export const service = 'x';\n",
      /has no default export; write export default \{ service/,
    ],
    [
      "a function",
      "export default () => {};\n",
      /default export of .* is a function, not an object/,
    ],
    ["an array", "export default [];\n", /is an array, not an object/],
    ["no service", "export default { methods: { a: () => 1 } };\n", /"service" must be a name/],
    [
      "a bad service name",
      "export default { service: 'a b', methods: { a: () => 1 } };\n",
      /"service" must be a name/,
    ],
    [
      "an unknown key",
      "export default { service: 'x', method: {} };\n",
      /unknown key method \(a module may set service, version/,
    ],
    [
      "nothing to host",
      "export default { service: 'x', methods: {} };\n",
      /at least one entry in "methods" or "events"/,
    ],
    [
      "methods not an object",
      "export default { service: 'x', methods: 5 };\n",
      /"methods" must be an object, got a number/,
    ],
    [
      "a version not a string",
      "export default { service: 'x', version: 1, methods: { a: () => 1 } };\n",
      /"version" must be a string/,
    ],
    ["a syntax error", "export default {\n", /failed to load: /],
    [
      "a failing import",
      "import 'no-such-package-natsmesh';\nexport default {};\n",
      /failed to load: .*no-such-package-natsmesh/,
    ],
  ])("exits 2 for a module with %s, before connecting", async (_what, text, message) => {
    const path = write("service.mjs", text);
    // An unreachable server: the module is checked first, so it is never reached.
    const r = await runCli(["agent", path], { NATS_URL: `nats://127.0.0.1:${await closedPort()}` });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.split("\n")).toHaveLength(1);
    expect(r.stdout).toBe("");
  });

  it("exits 2 for a missing module", async () => {
    const r = await runCli(["agent", "examples/services/nope.mjs"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^natsmesh: the service module examples\/services\/nope\.mjs does not exist \(looked for \/.*nope\.mjs\)$/,
    );
  });

  it("exits 2 for a module the agent refuses, naming the module", async () => {
    const path = write("bad.mjs", "export default { service: 'x', methods: { a: 42 } };\n");
    const r = await runCli(["agent", path], { NATS_URL: t.server.url });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `natsmesh: the service module ${path} is refused: method a must be a function`,
    );
  });

  it.each([
    [
      ["--weight", "10001"],
      /option '--weight <N>' argument '10001' is invalid\. It must be an integer from 0 to 10000\./,
    ],
    [["--zone", "a b"], /option '--zone <ZONE>' argument 'a b' is invalid/],
    [
      ["--version", "1 0"],
      /option '--version <V>' argument '1 0' is invalid\. It must be 1-64 printable/,
    ],
    [["--concurrency", "0"], /option '--concurrency <N>' argument '0' is invalid/],
    [["--issuer", "me"], /--issuer needs --jwks \(or MESH_JWKS\)/],
    [["--metrics-port", "65536"], /option '--metrics-port <N>' argument '65536' is invalid/],
    [["--metrics-host", "0.0.0.0"], /--metrics-host needs --metrics-port \(or MESH_METRICS_PORT\)/],
    [[], /missing required argument 'module'/],
  ])("exits 2 for the flags %j", async (flags, message) => {
    const args = flags.length === 0 ? ["agent"] : ["agent", module("echo"), ...flags];
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it("exits 2 for a bad MESH_WEIGHT, naming the variable", async () => {
    const r = await runCli(["agent", module("echo")], { MESH_WEIGHT: "heavy" });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /option '--weight <N>' value 'heavy' from env 'MESH_WEIGHT' is invalid\. It must be an integer/,
    );
  });

  it("exits 1 with one line when NATS is unreachable", async () => {
    const r = await runCli(["agent", module("echo")], {
      NATS_URL: `nats://127.0.0.1:${await closedPort()}`,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^natsmesh: cannot reach NATS at .*Is nats-server running\?/);
  });
});
