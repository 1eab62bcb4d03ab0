import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertJwks, type JsonWebKeySet } from "@natsmesh/protocol";
import { killAllProcesses } from "@natsmesh/testing";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { removeTempDirs, runCli, tempDir } from "./cli-process.js";

afterEach(killAllProcesses);
afterAll(removeTempDirs);

interface Generated {
  kid: string;
  alg: string;
  privateKeyFile: string;
  jwksFile: string;
}

async function generate(...args: string[]): Promise<Generated> {
  const r = await runCli(["keys", "generate", "--json", ...args]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as Generated;
}

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
}

function readKeySet(path: string): JsonWebKeySet {
  const value: unknown = JSON.parse(readFileSync(path, "utf8"));
  assertJwks(value);
  return value;
}

describe("natsmesh keys generate", () => {
  it("writes <kid>.private.jwk.json with mode 0600 and a public jwks.json", async () => {
    const dir = tempDir();
    const g = await generate("--out", dir);
    expect(g).toEqual({
      kid: expect.any(String),
      alg: "EdDSA",
      privateKeyFile: join(dir, `${g.kid}.private.jwk.json`),
      jwksFile: join(dir, "jwks.json"),
    });
    expect(statSync(g.privateKeyFile).mode & 0o777).toBe(0o600);
    const key = readJson(g.privateKeyFile);
    expect(key).toMatchObject({ kid: g.kid, alg: "EdDSA", kty: "OKP", d: expect.any(String) });
    const jwks = readKeySet(g.jwksFile);
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kid: g.kid, alg: "EdDSA", x: key.x });
    expect(jwks.keys[0]).not.toHaveProperty("d");
  });

  it("adds the new public key to an existing jwks.json (rotation) and says so", async () => {
    const dir = tempDir();
    const first = await generate("--out", dir);
    const r = await runCli(["keys", "generate", "--out", dir, "--alg", "ES256"]);
    expect(r.code).toBe(0);
    const kid = /^kid +(\S+) \(ES256\)$/m.exec(r.stdout)?.[1];
    expect(kid).toBeDefined();
    expect(r.stdout).toContain(`${join(dir, `${kid}.private.jwk.json`)} (mode 0600`);
    expect(r.stdout).toMatch(/key ADDED to the existing set, now 2 keys/);
    expect(r.stdout).toMatch(/^Rotation: /m);
    expect(readKeySet(first.jwksFile).keys.map((k) => [k.kid, k.alg])).toEqual([
      [first.kid, "EdDSA"],
      [kid, "ES256"],
    ]);
    const third = await generate("--out", dir, "--alg", "RS256");
    expect(readKeySet(third.jwksFile).keys.map((k) => k.kid)).toEqual([first.kid, kid, third.kid]);
    expect(statSync(third.privateKeyFile).mode & 0o777).toBe(0o600);
  });

  it("creates --out when missing, owner-only", async () => {
    const dir = join(tempDir(), "new", "keys");
    const g = await generate("--out", dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readdirSync(dir).sort()).toEqual([`${g.kid}.private.jwk.json`, "jwks.json"].sort());
  });

  it("refuses to overwrite a jwks.json that is not a key set unless --force", async () => {
    for (const bad of ["{ not json", JSON.stringify({ keys: [{ kty: "oct", k: "c2VjcmV0" }] })]) {
      const dir = tempDir();
      writeFileSync(join(dir, "jwks.json"), bad);
      const refused = await runCli(["keys", "generate", "--out", dir]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/^natsmesh: the JWKS file .*jwks\.json .*--force/);
      expect(refused.stdout).toBe("");
      // Refused before any key was made: nothing new, nothing changed.
      expect(readdirSync(dir)).toEqual(["jwks.json"]);
      expect(readFileSync(join(dir, "jwks.json"), "utf8")).toBe(bad);

      const forced = await runCli(["keys", "generate", "--out", dir, "--force", "--json"]);
      expect(forced.code).toBe(0);
      expect(forced.stderr).toMatch(/replacing it \(--force\)/);
      const g = JSON.parse(forced.stdout) as Generated;
      expect(readKeySet(g.jwksFile).keys.map((k) => k.kid)).toEqual([g.kid]);
    }
  });

  it("refuses an unknown --alg or an --out that is a file, exit 2", async () => {
    const alg = await runCli(["keys", "generate", "--alg", "HS256", "--out", tempDir()]);
    expect(alg.code).toBe(2);
    expect(alg.stderr).toMatch(
      /'--alg <ALG>' argument 'HS256' is invalid. It must be one of EdDSA, ES256, RS256/,
    );
    const file = join(tempDir(), "file");
    writeFileSync(file, "");
    const out = await runCli(["keys", "generate", "--out", file]);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/is not a directory/);
  });
});
