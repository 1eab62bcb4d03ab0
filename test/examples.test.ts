import { fileURLToPath } from "node:url";
import { runProcess, startNatsServer, uniquePrefix } from "@natsmesh/testing";
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
