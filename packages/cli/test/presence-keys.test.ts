import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { KV } from "@nats-io/kv";
import { type Agent, startAgent } from "@natsmesh/agent";
import {
  createPresenceSigner,
  generateKeyPair,
  type MeshKeyPair,
  presenceKey,
} from "@natsmesh/protocol";
import {
  cleanup,
  createPresenceBucket,
  forgedRecord,
  killAllProcesses,
  setup,
  type TestSetup,
  uniquePrefix,
} from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { removeTempDirs, runCli, startCli, tempDir } from "./cli-process.js";

// With the registries' public keys (--presence-keys or MESH_PRESENCE_KEYS), ls, watch and call
// take only records a registry signed: a record written straight into the bucket is not shown
// and takes no call.

let t: TestSetup;
let keys: MeshKeyPair;
let jwksFile: string;
const agents: Agent[] = [];

beforeAll(async () => {
  t = await setup({ tag: "clikeys" });
  keys = await generateKeyPair();
  jwksFile = join(tempDir(), "presence-jwks.json");
  writeFileSync(jwksFile, JSON.stringify(keys.jwks));
});
afterEach(killAllProcesses);
afterAll(async () => {
  removeTempDirs();
  await cleanup(t, ...agents);
});

interface Scene {
  prefix: string;
  env: Record<string, string>;
  kv: KV;
  agent: Agent;
}

/**
 * A bucket holding a live agent's record signed with the registry key (as a registry with
 * `auth.signingKey` writes it) and a forged, unsigned record whose subject an attacker answers.
 */
async function scene(): Promise<Scene> {
  const prefix = uniquePrefix("clikeys");
  const kv = await createPresenceBucket(t.nc, prefix);
  const agent = await startAgent({
    servers: t.server.url,
    prefix,
    service: "billing",
    methods: { pay: () => "real" },
  });
  agents.push(agent);
  const key = presenceKey("billing", agent.id);
  await kv.put(key, createPresenceSigner(keys.privateJwk).signedValue(key, agent.record));
  await kv.put(presenceKey("billing", "FAKE1"), JSON.stringify(forgedRecord(prefix, "FAKE1")));
  t.nc.subscribe(`${prefix}.inst.billing.FAKE1.pay`, {
    callback: (_err, msg) => {
      msg.respond(new TextEncoder().encode('"stolen"'));
    },
  });
  await t.nc.flush();
  return { prefix, env: { NATS_URL: t.server.url, MESH_PREFIX: prefix }, kv, agent };
}

const ids = (stdout: string) => (JSON.parse(stdout) as { id: string }[]).map((r) => r.id);

describe("ls with the registries' keys", () => {
  it("shows only signed records (MESH_PRESENCE_KEYS, or --presence-keys inline), and says what it skipped", async () => {
    const s = await scene();
    const fromEnv = await runCli(["ls", "--json"], { ...s.env, MESH_PRESENCE_KEYS: jwksFile });
    expect(fromEnv.code).toBe(0);
    expect(ids(fromEnv.stdout)).toEqual([s.agent.id]);
    expect(fromEnv.stderr).toContain('skipping invalid record at key "billing.FAKE1"');
    const flag = await runCli(
      ["ls", "--json", "--presence-keys", JSON.stringify(keys.jwks)],
      s.env,
    );
    expect(ids(flag.stdout)).toEqual([s.agent.id]);
    // Without keys the forgery is listed: the keys are what keeps it out.
    const unchecked = await runCli(["ls", "--json"], s.env);
    expect(ids(unchecked.stdout).sort()).toEqual(["FAKE1", s.agent.id].sort());
  });

  it("refuses keys that are no key set, exit 2, naming where they came from", async () => {
    const env = { NATS_URL: t.server.url, MESH_PREFIX: uniquePrefix("clikeys") };
    const bad = await runCli(["ls"], { ...env, MESH_PRESENCE_KEYS: "{not json" });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("MESH_PRESENCE_KEYS");
    const missing = await runCli(["ls", "--presence-keys", join(tempDir(), "none.json")], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--presence-keys");
  });
});

describe("watch with the registries' keys", () => {
  it("prints only signed records", async () => {
    const s = await scene();
    const cli = startCli(["watch", "--json"], { ...s.env, MESH_PRESENCE_KEYS: jwksFile });
    await cli.waitFor(new RegExp(s.agent.id));
    // The snapshot is read in order: once both entries are through, the forgery was skipped.
    await cli.waitFor(/skipping invalid record at key "billing\.FAKE1"/, { stream: "stderr" });
    expect(cli.stdout.filter((l) => l.includes("FAKE1"))).toEqual([]);
    expect(await cli.stop("SIGTERM")).toBe(0);
  });
});

describe("call with the registries' keys", () => {
  it("never picks a forged record", async () => {
    const s = await scene();
    for (let i = 0; i < 5; i++) {
      const r = await runCli(["call", "billing.pay", "--balance", "weighted", "--json"], {
        ...s.env,
        MESH_PRESENCE_KEYS: jwksFile,
      });
      expect([r.code, r.stdout]).toEqual([0, '"real"']);
    }
    // Without keys, the forgery's weight of 10,000 against 100 takes nearly every call.
    const replies: string[] = [];
    for (let i = 0; i < 3; i++) {
      replies.push(
        (await runCli(["call", "billing.pay", "--balance", "weighted", "--json"], s.env)).stdout,
      );
    }
    expect(replies).toContain('"stolen"');
  });

  it("reads no keys for a queue call, which reads no presence", async () => {
    const s = await scene();
    const queue = await runCli(["call", "billing.pay", "--json"], {
      ...s.env,
      MESH_PRESENCE_KEYS: join(tempDir(), "none.json"),
    });
    expect([queue.code, queue.stdout]).toEqual([0, '"real"']);
    // The same variable is refused where presence is read.
    const weighted = await runCli(["call", "billing.pay", "--balance", "weighted"], {
      ...s.env,
      MESH_PRESENCE_KEYS: join(tempDir(), "none.json"),
    });
    expect(weighted.code).toBe(2);
    expect(weighted.stderr).toContain("MESH_PRESENCE_KEYS");
  });
});
