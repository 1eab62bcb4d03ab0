import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  assertJwks,
  createVerifier,
  generateKeyPair,
  issueToken,
  type JsonWebKeySet,
} from "@natsmesh/protocol";
import { killAllProcesses } from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { removeTempDirs, runCli, tempDir } from "./cli-process.js";

let keyFile: string;
let jwks: JsonWebKeySet;
let kid: string;

beforeAll(async () => {
  const dir = tempDir();
  const r = await runCli(["keys", "generate", "--out", dir, "--json"]);
  const g = JSON.parse(r.stdout) as { kid: string; privateKeyFile: string; jwksFile: string };
  keyFile = g.privateKeyFile;
  kid = g.kid;
  const value: unknown = JSON.parse(readFileSync(g.jwksFile, "utf8"));
  assertJwks(value);
  jwks = value;
});
afterEach(killAllProcesses);
afterAll(removeTempDirs);

function issue(...args: string[]) {
  return runCli(["token", "issue", "--key", keyFile, ...args]);
}

describe("natsmesh token issue", () => {
  it("prints only the JWT, which verifies with the JWKS and has the sub, scope and exp", async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await issue("--sub", "alice", "--scope", "billing.* greeter.hello", "--ttl", "1h");
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const verified = await createVerifier({ jwks }).verify(r.stdout);
    expect(verified.kid).toBe(kid);
    expect(verified.claims.sub).toBe("alice");
    expect(verified.claims.aud).toBe("natsmesh");
    expect(verified.scopes).toEqual(["billing.*", "greeter.hello"]);
    expect(verified.claims.exp - verified.claims.iat!).toBe(3600);
    expect(verified.claims.exp).toBeGreaterThanOrEqual(before + 3600);
    expect(verified.claims.exp).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 3600);
  });

  it("takes --ttl in seconds, --issuer and --audience, and prints {token, kid, exp} with --json", async () => {
    const r = await issue(
      ...["--sub", "svc", "--scope", "announce:echo", "--ttl", "90", "--json"],
      ...["--issuer", "https://issuer.test", "--audience", "mesh-a"],
    );
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { token: string; kid: string; exp: number };
    expect(Object.keys(out).sort()).toEqual(["exp", "kid", "token"]);
    expect(out.kid).toBe(kid);
    const verifier = createVerifier({ jwks, issuer: "https://issuer.test", audience: "mesh-a" });
    const { claims } = await verifier.verify(out.token);
    expect(claims.exp).toBe(out.exp);
    expect(claims.exp - claims.iat!).toBe(90);
    expect(claims.scope).toBe("announce:echo");
  });

  it("takes emit: and stats: patterns, as events and the dashboard need", async () => {
    const r = await issue(
      "--sub",
      "svc",
      "--scope",
      "announce:orders emit:order.* stats:*",
      "--json",
    );
    expect(r.code, r.stderr).toBe(0);
    const { claims } = await createVerifier({ jwks }).verify(
      (JSON.parse(r.stdout) as { token: string }).token,
    );
    expect(claims.scope).toBe("announce:orders emit:order.* stats:*");
  });

  it("takes the issuer and audience from MESH_ISSUER and MESH_AUDIENCE; flags win", async () => {
    const env = { MESH_ISSUER: "env-iss", MESH_AUDIENCE: "env-aud" };
    const args = ["token", "issue", "--key", keyFile, "--sub", "a", "--scope", "*", "--json"];
    const fromEnv = await runCli(args, env);
    const { token } = JSON.parse(fromEnv.stdout) as { token: string };
    const { claims } = await createVerifier({
      jwks,
      issuer: "env-iss",
      audience: "env-aud",
    }).verify(token);
    expect([claims.iss, claims.aud]).toEqual(["env-iss", "env-aud"]);
    const flags = await runCli([...args, "--audience", "flag-aud"], env);
    const flagged = JSON.parse(flags.stdout) as { token: string };
    const checked = await createVerifier({ jwks, audience: "flag-aud" }).verify(flagged.token);
    expect(checked.claims.aud).toBe("flag-aud");
  });

  it.each([
    [["--sub", "a", "--scope", "x.y"], /required option '--key <FILE>' not specified/],
    [["--key", "k", "--scope", "x.y"], /required option '--sub <NAME>' not specified/],
    [["--key", "k", "--sub", "a"], /required option '--scope <PATTERNS>' not specified/],
    [["--key", "k", "--sub", "a", "--scope", "x.y", "--ttl", "soon"], /It must be seconds/],
    [["--key", "k", "--sub", "a", "--scope", "x.y", "--ttl", "0"], /It must be seconds/],
    [["--key", "k", "--sub", "a", "--scope", "billing"], /pattern "billing" would never/],
    [
      ["--key", "k", "--sub", "a", "--scope", "emit:order..x"],
      /pattern "emit:order\.\.x" would never/,
    ],
    [["--key", "k", "--sub", "a", "--scope", "stats:a.b"], /pattern "stats:a\.b" would never/],
    [["--key", "k", "--sub", " ", "--scope", "x.y"], /'--sub <NAME>' argument ' ' is invalid/],
  ])("exits 2 with the usage for %j", async (args, message) => {
    const r = await runCli(["token", "issue", ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/Usage: natsmesh token issue/);
    expect(r.stdout).toBe("");
  });

  it("refuses a key file that is not a private signing key, exit 2", async () => {
    const dir = tempDir();
    const pair = await generateKeyPair();
    const files = {
      missing: [join(dir, "nope.json"), /cannot read the key file .*: no such file/],
      garbage: ["{ nope", /the key file .* is not JSON/],
      jwks: [JSON.stringify(pair.jwks), /is a key set \(public keys\), not a private key/],
      public: [JSON.stringify(pair.publicJwk), /holds a public key; pass the <kid>\.private/],
      secret: [JSON.stringify({ kty: "oct", k: "c2VjcmV0", alg: "HS256" }), /symmetric key/],
      noAlg: [JSON.stringify({ ...pair.privateJwk, alg: undefined }), /must have "alg" set/],
      broken: [JSON.stringify({ ...pair.privateJwk, d: "AA" }), /cannot sign with the key in/],
    } as const;
    for (const [name, [content, message]] of Object.entries(files)) {
      const path = name === "missing" ? content : join(dir, `${name}.json`);
      if (name !== "missing") writeFileSync(path, content, { mode: 0o600 });
      const r = await runCli(["token", "issue", "--key", path, "--sub", "a", "--scope", "*"]);
      expect({ name, code: r.code, stdout: r.stdout }).toEqual({ name, code: 2, stdout: "" });
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/Usage:/);
    }
  });
});

describe("natsmesh token inspect", () => {
  it("shows the header, the claims, the expiry in words and the scope one per line", async () => {
    const { stdout: token } = await issue("--sub", "alice", "--scope", "billing.* greeter.hello");
    const r = await runCli(["token", "inspect", token]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    const lines = r.stdout.split("\n");
    expect(lines[0]).toMatch(/signature is NOT verified/);
    expect(lines).toContain(`  kid  ${kid}`);
    expect(lines).toContain("  alg  EdDSA");
    expect(lines.some((l) => /^ {2}sub +alice$/.test(l))).toBe(true);
    expect(lines.some((l) => /^ {2}exp +\d+ \(\d{4}-\d\d-\d\dT/.test(l))).toBe(true);
    expect(lines).toContain("expires in 59m");
    const scope = lines.indexOf("scope");
    expect(lines.slice(scope + 1, scope + 3)).toEqual(["  billing.*", "  greeter.hello"]);
  });

  it("says how long ago an expired token expired; --json gives a negative expiresIn", async () => {
    const key = JSON.parse(readFileSync(keyFile, "utf8")) as Parameters<
      typeof issueToken
    >[0]["key"];
    const expired = await issueToken({ key, sub: "old", scope: "*", ttl: -3 * 3600 - 60 });
    const r = await runCli(["token", "inspect", expired]);
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")).toContain("expired 3h ago");
    const json = await runCli(["token", "inspect", expired, "--json"]);
    const out = JSON.parse(json.stdout) as {
      header: Record<string, unknown>;
      claims: Record<string, unknown>;
      expiresIn: number;
    };
    expect(out.header).toMatchObject({ alg: "EdDSA", kid });
    expect(out.claims).toMatchObject({ sub: "old", scope: "*" });
    expect(out.expiresIn).toBeLessThanOrEqual(-3 * 3600 - 60);
    expect(out.expiresIn).toBeGreaterThan(-3 * 3600 - 90);
  });

  it("says when a token is not valid yet", async () => {
    const key = JSON.parse(readFileSync(keyFile, "utf8")) as Parameters<
      typeof issueToken
    >[0]["key"];
    const nbf = Math.floor(Date.now() / 1000) + 150;
    const later = await issueToken({ key, sub: "later", scope: "*", claims: { nbf } });
    const r = await runCli(["token", "inspect", later]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^not valid for another 2m$/m);
    expect(r.stdout).toMatch(/^expires in 59m$/m);
  });

  it('reads the token from stdin for "-", and from --token or MESH_TOKEN without an argument', async () => {
    const { stdout: token } = await issue("--sub", "piped", "--scope", "*", "--ttl", "2d");
    const piped = await runCli(["token", "inspect", "-", "--json"], {}, 15_000, `${token}\n`);
    expect(piped.code).toBe(0);
    const out = JSON.parse(piped.stdout) as { claims: { sub: string }; expiresIn: number };
    expect(out.claims.sub).toBe("piped");
    expect(out.expiresIn).toBeGreaterThan(2 * 86_400 - 60);
    const env = await runCli(["token", "inspect"], { MESH_TOKEN: token });
    expect(env.stdout).toMatch(/^expires in 1d$/m);
    const flag = await runCli(["--token", token, "token", "inspect", "--json"], {
      MESH_TOKEN: "not-this-one",
    });
    expect((JSON.parse(flag.stdout) as { claims: { sub: string } }).claims.sub).toBe("piped");
  });

  it.each([
    ["garbage", undefined],
    ["a.b.c", undefined],
    ["-", "not a token\n"],
    ["-", ""],
  ])("refuses %j (stdin %j) with a clear message, exit 2", async (arg, input) => {
    const r = await runCli(["token", "inspect", arg], {}, 15_000, input);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^natsmesh: (not a JWT|no token given)/);
    expect(r.stdout).toBe("");
  });

  it("needs a token: an argument, --token or MESH_TOKEN", async () => {
    const r = await runCli(["token", "inspect"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/token inspect needs <jwt>/);
  });
});
