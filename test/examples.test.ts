import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { startNatsServer } from "@natsmesh/testing";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

describe("README examples", () => {
  it("examples/hello.mjs greets and shows an error code", async () => {
    await using server = await startNatsServer();
    const script = new URL("../examples/hello.mjs", import.meta.url).pathname;
    const { stdout } = await run(process.execPath, [script], {
      env: { ...process.env, NATS_URL: server.url, MESH_PREFIX: `ex${process.pid}` },
      timeout: 20_000,
    });
    expect(stdout).toBe("Hello, NATS!\nBAD_REQUEST: name must be a string\n");
  });
});
