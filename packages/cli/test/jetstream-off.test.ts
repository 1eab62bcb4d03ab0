import {
  cleanup,
  killAllProcesses,
  type NatsServer,
  startNatsServer,
  uniquePrefix,
} from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { removeTempDirs, runCli, tempDir } from "./cli-process.js";

let server: NatsServer;

beforeAll(async () => {
  server = await startNatsServer({ jetstream: false });
});
afterEach(killAllProcesses);
afterAll(async () => {
  removeTempDirs();
  await cleanup(server);
});

describe("natsmesh on a server without JetStream", () => {
  it.each(["ls", "watch"])(
    "%s says so in one line and exits 1 instead of waiting",
    async (command) => {
      const r = await runCli([command], { NATS_URL: server.url, MESH_PREFIX: uniquePrefix() });
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        "natsmesh: JetStream is not enabled on this NATS server (run nats-server with -js).",
      );
    },
  );

  it("keys publish says so in one line and exits 1", async () => {
    const dir = tempDir();
    const keys = await runCli(["keys", "generate", "--out", dir, "--json"]);
    const { jwksFile } = JSON.parse(keys.stdout) as { jwksFile: string };
    const r = await runCli(["keys", "publish", jwksFile], {
      NATS_URL: server.url,
      MESH_PREFIX: uniquePrefix(),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      "natsmesh: JetStream is not enabled on this NATS server (run nats-server with -js).",
    );
  });

  it("registry fails to start with exit 1 and the reason", async () => {
    const r = await runCli(["registry"], { NATS_URL: server.url, MESH_PREFIX: uniquePrefix() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^natsmesh: the registry did not start: .*jetstream/i);
  });
});
