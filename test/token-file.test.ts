import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Agent, startAgent } from "@natsmesh/agent";
import { generateKeyPair, issueToken, type MeshKeyPair } from "@natsmesh/protocol";
import { tokenFromEnv } from "@natsmesh/protocol/internal";
import { type Registry, startRegistry } from "@natsmesh/registry";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup, waitUntil } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// MESH_TOKEN_FILE: a process's own token read from a file (a mounted secret, or a volume that a
// token issuer rewrites), as docker/compose.yml's auth profile runs its agents.
let t: TestSetup;
let keys: MeshKeyPair;
let dir: string;
let registry: Registry;
let agent: Agent;
let mesh: Mesh;

beforeAll(async () => {
  t = await setup({ tag: "tokenfile" });
  keys = await generateKeyPair();
  dir = mkdtempSync(join(tmpdir(), "natsmesh-token-file-"));
  registry = await startRegistry({
    servers: t.server.url,
    prefix: t.prefix,
    auth: { jwks: keys.jwks, signingKey: keys.privateJwk },
  });
});

afterAll(async () => {
  await cleanup(t, registry, agent, mesh);
  rmSync(dir, { recursive: true, force: true });
});

describe("MESH_TOKEN_FILE", () => {
  it("MESH_TOKEN wins; the file is read, trimmed, and read again on each refresh", () => {
    const file = join(dir, "plain.jwt");
    writeFileSync(file, "first\n");
    expect(tokenFromEnv({ MESH_TOKEN: "inline", MESH_TOKEN_FILE: file })).toBe("inline");
    expect(tokenFromEnv({ MESH_TOKEN: "", MESH_TOKEN_FILE: "" })).toBeUndefined();
    const source = tokenFromEnv({ MESH_TOKEN_FILE: file });
    expect(typeof source).toBe("function");
    const read = source as () => string;
    expect(read()).toBe("first");
    writeFileSync(file, "second");
    expect(read()).toBe("second");
  });

  it("signs an agent's first announcement, so a registry with auth records it", async () => {
    const file = join(dir, "echo.jwt");
    writeFileSync(
      file,
      `${await issueToken({ key: keys.privateJwk, sub: "echo", scope: "announce:echo", ttl: "1h" })}\n`,
    );
    const saved = process.env.MESH_TOKEN_FILE;
    process.env.MESH_TOKEN_FILE = file;
    try {
      agent = await startAgent({
        servers: t.server.url,
        prefix: t.prefix,
        service: "echo",
        auth: false,
        methods: { say: (p: unknown) => p },
      });
    } finally {
      if (saved === undefined) delete process.env.MESH_TOKEN_FILE;
      else process.env.MESH_TOKEN_FILE = saved;
    }
    mesh = await connectMesh({ servers: t.server.url, prefix: t.prefix });
    const seen = await waitUntil(() => mesh.instances("echo").length === 1, { timeoutMs: 10_000 });
    expect(seen).toBe(true);
    expect(mesh.instances("echo")[0]?.id).toBe(agent.id);
  });
});
