import { readFileSync } from "node:fs";
import { Kvm } from "@nats-io/kv";
import { startAgent } from "@natsmesh/agent";
import { presenceBucket } from "@natsmesh/protocol";
import {
  cleanup,
  instanceRecord,
  killAllProcesses,
  setup,
  type TestSetup,
  uniquePrefix,
} from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { removeTempDirs, runCli, startCli, tempDir } from "./cli-process.js";

let t: TestSetup;

beforeAll(async () => {
  t = await setup();
});
afterEach(killAllProcesses);
afterAll(async () => {
  removeTempDirs();
  await cleanup(t);
});

/** The value of the Prometheus counter `name` at `url`. */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(url)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return Number(line?.split(" ")[1]);
}

/** The log line (pino JSON) at `index` of a registry's stdout. */
function logAt(lines: readonly string[], index: number): Record<string, unknown> {
  return JSON.parse(lines[index]!) as Record<string, unknown>;
}

describe("natsmesh registry", () => {
  it("mirrors an agent's presence into KV, logs JSON, and exits 0 on SIGTERM", async () => {
    const prefix = uniquePrefix();
    const env = { NATS_URL: t.server.url, MESH_PREFIX: prefix, MESH_HEARTBEAT_MS: "100" };
    const registry = startCli(["registry", "--http-port", "0"], env);
    const started = await registry.waitFor(/"msg":"registry started"/);
    expect(logAt(registry.stdout, started)).toMatchObject({ level: 30, leader: true });
    const http = await registry.waitFor(/"msg":"http endpoint listening"/);
    const { port } = logAt(registry.stdout, http) as { port: number };
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);

    const agent = await startAgent({
      servers: t.server.url,
      prefix,
      service: "echo",
      heartbeatMs: 100,
      methods: { say: (p) => p },
    });
    const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
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
    const env = { NATS_URL: t.server.url, MESH_PREFIX: prefix, MESH_HEARTBEAT_MS: "100" };
    const registry = startCli(["registry"], env);
    await registry.waitFor(/"msg":"registry started"/);
    // An announcement, then silence, as from a process that died without saying "down".
    const record = instanceRecord(prefix, "echo", { id: "silent1" });
    t.nc.publish(
      `${prefix}.presence.echo.silent1`,
      JSON.stringify({ kind: "up", instance: record }),
    );
    const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
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

  it("with --jwks, mirrors an agent whose token verifies and drops a forged up", async () => {
    const prefix = uniquePrefix();
    const dir = tempDir();
    const keys = await runCli(["keys", "generate", "--out", dir, "--json"]);
    const { privateKeyFile, jwksFile } = JSON.parse(keys.stdout) as Record<string, string>;
    const issued = await runCli([
      ...["token", "issue", "--key", privateKeyFile!, "--sub", "echo-agent"],
      ...["--scope", "announce:echo", "--ttl", "10m"],
    ]);
    expect(issued.code).toBe(0);
    const token = issued.stdout.trim();

    const env = { NATS_URL: t.server.url, MESH_PREFIX: prefix, MESH_HEARTBEAT_MS: "100" };
    const registry = startCli(
      ["registry", "--jwks", jwksFile!, "--signing-key", privateKeyFile!, "--http-port", "0"],
      env,
    );
    await registry.waitFor(/"msg":"registry started"/);
    const loaded = await registry.waitFor(/"msg":"key set loaded"/);
    const kid = (JSON.parse(readFileSync(jwksFile!, "utf8")) as { keys: { kid: string }[] })
      .keys[0]!.kid;
    expect(logAt(registry.stdout, loaded)).toMatchObject({ kids: [kid] });
    const http = await registry.waitFor(/"msg":"http endpoint listening"/);
    const { port } = logAt(registry.stdout, http) as { port: number };
    const metrics = `http://127.0.0.1:${port}/metrics`;

    // Without a token, as anyone allowed to publish on the presence subjects could.
    const forged = instanceRecord(prefix, "echo", { id: "forged1" });
    t.nc.publish(
      `${prefix}.presence.echo.forged1`,
      JSON.stringify({ kind: "up", instance: forged }),
    );
    await t.nc.flush();
    await expect
      .poll(() => metric(metrics, "natsmesh_registry_unauthorized_messages_total"), {
        timeout: 10_000,
      })
      .toBeGreaterThanOrEqual(1);

    const agent = await startAgent({
      servers: t.server.url,
      prefix,
      service: "echo",
      heartbeatMs: 100,
      token,
      methods: { say: (p) => p },
    });
    try {
      const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
      // The record as the agent announced it, signed by the registry.
      await expect
        .poll(async () => (await kv.get(`echo.${agent.id}`))?.json(), { timeout: 10_000 })
        .toEqual({ ...agent.record, sig: expect.objectContaining({ kid: expect.any(String) }) });
      expect(await kv.get("echo.forged1")).toBeNull();
      const ls = await runCli(["ls", "--json"], env);
      expect((JSON.parse(ls.stdout) as { id: string }[]).map((r) => r.id)).toEqual([agent.id]);
    } finally {
      await agent.stop();
    }
    expect(await registry.stop("SIGTERM")).toBe(0);
  });

  it("refuses a --jwks file that cannot be read, exit 2", async () => {
    const env = { NATS_URL: t.server.url, MESH_PREFIX: uniquePrefix() };
    const r = await runCli(
      ["registry", "--jwks", `${tempDir()}/nope.json`, "--unsigned-presence"],
      env,
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^natsmesh: cannot read the JWKS file .*nope\.json/);
  });

  it("takes the key set from MESH_JWKS (inline JSON too); --jwks wins over it", async () => {
    const kidOf = (file: string) =>
      (JSON.parse(readFileSync(file, "utf8")) as { keys: { kid: string }[] }).keys[0]!.kid;
    const generate = async () => {
      const r = await runCli(["keys", "generate", "--out", tempDir(), "--json"]);
      return (JSON.parse(r.stdout) as { jwksFile: string }).jwksFile;
    };
    const [fromEnv, fromFlag] = [await generate(), await generate()];
    const env = {
      NATS_URL: t.server.url,
      MESH_PREFIX: uniquePrefix(),
      MESH_JWKS: readFileSync(fromEnv, "utf8"),
      MESH_UNSIGNED_PRESENCE: "1",
    };
    for (const [args, file] of [
      [[], fromEnv],
      [["--jwks", fromFlag], fromFlag],
    ] as const) {
      const registry = startCli(["registry", ...args], env);
      const loaded = await registry.waitFor(/"msg":"key set loaded"/);
      expect(logAt(registry.stdout, loaded)).toMatchObject({ kids: [kidOf(file)] });
      expect(await registry.stop("SIGTERM")).toBe(0);
    }
  });

  it("with auth, refuses to start without a signing key, saying what to set; exit 2", async () => {
    const dir = tempDir();
    const generated = await runCli(["keys", "generate", "--out", dir, "--json"]);
    const { jwksFile } = JSON.parse(generated.stdout) as Record<string, string>;
    const env = { NATS_URL: t.server.url, MESH_PREFIX: uniquePrefix() };
    const r = await runCli(["registry", "--jwks", jwksFile!], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--signing-key|MESH_SIGNING_KEY/);
    expect(r.stderr).toContain("MESH_PRESENCE_KEYS");
    const bad = await runCli(["registry", "--jwks", jwksFile!], {
      ...env,
      MESH_UNSIGNED_PRESENCE: "yes",
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("MESH_UNSIGNED_PRESENCE");
  });

  it("--unsigned-presence opts out, with a warning; with a key it is refused", async () => {
    const dir = tempDir();
    const generated = await runCli(["keys", "generate", "--out", dir, "--json"]);
    const { jwksFile, privateKeyFile } = JSON.parse(generated.stdout) as Record<string, string>;
    const env = { NATS_URL: t.server.url, MESH_PREFIX: uniquePrefix() };
    const both = await runCli(
      ["registry", "--jwks", jwksFile!, "--signing-key", privateKeyFile!, "--unsigned-presence"],
      env,
    );
    expect(both.code).toBe(2);
    const registry = startCli(["registry", "--jwks", jwksFile!, "--unsigned-presence"], env);
    const warned = await registry.waitFor(/"msg":"auth is on but records are unsigned/);
    expect(logAt(registry.stdout, warned)).toMatchObject({ level: 40 });
    await registry.waitFor(/"msg":"registry started"/);
    expect(await registry.stop("SIGTERM")).toBe(0);
  });
});
