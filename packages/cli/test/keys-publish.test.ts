import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { generateKeyPair, JWKS_KEY, registryBucket } from "@natsmesh/protocol";
import { cleanup, killAllProcesses, setup, type TestSetup, uniquePrefix } from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { closedPort, removeTempDirs, runCli, tempDir } from "./cli-process.js";

let t: TestSetup;

beforeAll(async () => {
  t = await setup();
});
afterEach(killAllProcesses);
afterAll(async () => {
  removeTempDirs();
  await cleanup(t);
});

/** A jwks.json from `keys generate` in a new directory, with its kid. */
async function generated(dir = tempDir()): Promise<{ kid: string; jwksFile: string }> {
  const r = await runCli(["keys", "generate", "--out", dir, "--json"]);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as { kid: string; jwksFile: string };
}

describe("natsmesh keys publish", () => {
  it('puts the JWKS under "jwks" in <prefix>_registry and prints the kids', async () => {
    const prefix = uniquePrefix();
    const env = { NATS_URL: t.server.url, MESH_PREFIX: prefix };
    const dir = tempDir();
    const first = await generated(dir);
    const r = await runCli(["keys", "publish", first.jwksFile], env);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    const bucket = registryBucket(prefix);
    expect(r.stdout.split("\n")).toEqual([
      `published 1 key to bucket ${bucket}, key "jwks" (revision 1)`,
      `  ${first.kid}`,
    ]);
    const kv = await new Kvm(t.nc).open(bucket);
    const entry = await kv.get(JWKS_KEY);
    expect(entry?.json()).toEqual(JSON.parse(readFileSync(first.jwksFile, "utf8")));
    expect((await kv.status()).history).toBe(1);

    // A rotation: the set now holds both keys; what changed is said.
    const second = await generated(dir);
    const json = await runCli(["keys", "publish", second.jwksFile, "--json"], env);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      bucket,
      key: "jwks",
      revision: 2,
      kids: [first.kid, second.kid],
      previousKids: [first.kid],
    });
    const latest = (await kv.get(JWKS_KEY))?.json() as { keys: { kid: string }[] };
    expect(latest.keys.map((k) => k.kid)).toEqual([first.kid, second.kid]);

    const alone = join(tempDir(), "only-second.json");
    writeFileSync(alone, JSON.stringify({ keys: [latest.keys[1]] }));
    const dropped = await runCli(["keys", "publish", alone], env);
    expect(dropped.stdout).toMatch(new RegExp(`^removed: ${first.kid} \\(tokens signed`, "m"));
  });

  it("refuses a file with a private key, a non-JWKS or an empty set, exit 2, before connecting", async () => {
    const pair = await generateKeyPair();
    const dir = tempDir();
    const cases = {
      "private.json": [{ keys: [pair.privateJwk] }, /holds private or symmetric key material/],
      "secret.json": [{ keys: [{ kty: "oct", k: "c2VjcmV0" }] }, /private or symmetric/],
      "single.json": [pair.publicJwk, /must be an object with a "keys" array/],
      "empty.json": [{ keys: [] }, /holds no keys/],
    } as const;
    // An unreachable server: a refusal that got as far as connecting would exit 1 instead.
    const env = { NATS_URL: `nats://127.0.0.1:${await closedPort()}`, MESH_PREFIX: uniquePrefix() };
    for (const [name, [value, message]] of Object.entries(cases)) {
      const file = join(dir, name);
      writeFileSync(file, JSON.stringify(value));
      const r = await runCli(["keys", "publish", file], env);
      expect({ name, code: r.code, stdout: r.stdout }).toEqual({ name, code: 2, stdout: "" });
      expect(r.stderr).toMatch(/^natsmesh: the JWKS file .* (is refused|holds no keys)/);
      expect(r.stderr).toMatch(message);
    }
    const missing = await runCli(["keys", "publish", join(dir, "nope.json")], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read the JWKS file .*: no such file/);
    const none = await runCli(["keys", "publish"], env);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/missing required argument 'file'/);
  });

  it("says once, clearly, that NATS is unreachable, exit 1", async () => {
    const { jwksFile } = await generated();
    const port = await closedPort();
    const r = await runCli(["keys", "publish", jwksFile], { NATS_URL: `nats://127.0.0.1:${port}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `natsmesh: cannot reach NATS at nats://127.0.0.1:${port} (connection refused). ` +
        "Is nats-server running? Set --server or NATS_URL.",
    );
    expect(r.stdout).toBe("");
  });
});
