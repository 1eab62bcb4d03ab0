import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type AgentOptions, startAgent } from "@natsmesh/agent";
import { connectMesh } from "@natsmesh/sdk";
import { cleanup, runProcess, startNatsServer, uniquePrefix } from "@natsmesh/testing";
import { describe, expect, it } from "vitest";

describe("README examples", () => {
  it("examples/hello.mjs greets and shows an error code", async () => {
    await using server = await startNatsServer();
    const script = fileURLToPath(new URL("../examples/hello.mjs", import.meta.url));
    const r = await runProcess(process.execPath, [script], {
      env: { NATS_URL: server.url, MESH_PREFIX: uniquePrefix("ex") },
      timeoutMs: 20_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("Hello, NATS!\nBAD_REQUEST: name must be a string");
  });
});

describe("README", () => {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const load = async (name: string) =>
    (
      (await import(new URL(`../examples/services/${name}.mjs`, import.meta.url).href)) as {
        default: AgentOptions;
      }
    ).default;

  it("shows example files verbatim where it says so", async () => {
    const readme = await readFile(join(root, "README.md"), "utf8");
    const blocks = [...readme.matchAll(/<!-- file: (\S+) -->\n```\w*\n([\s\S]*?)```/g)];
    expect(blocks.map((b) => b[1])).toEqual(["examples/services/greeter.mjs", "examples/sdk.mjs"]);
    for (const [, file, code] of blocks) {
      expect(code, file).toBe(await readFile(join(root, file!), "utf8"));
    }
  });

  it("examples/sdk.mjs calls a running mesh, configured by NATS_URL and MESH_PREFIX", async () => {
    await using server = await startNatsServer();
    const prefix = uniquePrefix("ex");
    const servers = server.url;
    const mesh = await connectMesh({ servers, prefix, presence: false });
    const echo = await startAgent({ ...(await load("echo")), servers, prefix });
    // The nested call to echo.say needs ctx.mesh, as `natsmesh agent` gives it.
    const greeter = await startAgent({ ...(await load("greeter")), servers, prefix, mesh });
    try {
      const r = await runProcess(process.execPath, [join(root, "examples/sdk.mjs")], {
        env: { NATS_URL: servers, MESH_PREFIX: prefix },
        unset: ["MESH_TOKEN", "MESH_TOKEN_FILE"],
        timeoutMs: 20_000,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe("Hello, SDK!\n{ n: 1 }");
    } finally {
      await cleanup(mesh, echo, greeter);
    }
  });
});
