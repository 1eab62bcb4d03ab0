import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsCluster, startNatsServer } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAlive } from "./helpers.js";

describe("startNatsServer failures", () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "natsmesh-testing-test-"));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("explains how to install nats-server when the binary is missing", async () => {
    const err = await startNatsServer({ binary: "/nonexistent/nats-server" }).catch((e) => e);
    expect(err).toMatchObject({ name: "NatsTestingError", code: "NATS_SERVER_NOT_FOUND" });
    // The message is the point of this error: it must tell a newcomer what to do.
    expect(err.message).toContain("apt-get install nats-server");
  });

  it("finds no binary on an empty PATH either", async () => {
    const path = process.env.PATH;
    process.env.PATH = dir;
    try {
      const err = await startNatsServer({ runtime: "process" }).catch((e) => e);
      expect(err).toMatchObject({ code: "NATS_SERVER_NOT_FOUND" });
    } finally {
      process.env.PATH = path;
    }
  });

  it("reports a server that exits during startup, with its log", async () => {
    const err = await startNatsServer({ runtime: "process", config: "this is { not valid" }).catch(
      (e) => e,
    );
    expect(err).toMatchObject({ code: "START_FAILED" });
    expect(err.message).toContain("last log lines");
  });

  it("reports a client port that is already taken", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const { port } = blocker.address() as { port: number };
    try {
      const err = await startNatsServer({ runtime: "process", port }).catch((e) => e);
      expect(err).toMatchObject({ code: "PORT_IN_USE" });
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it("gives up on a server that never gets ready, and kills it", async () => {
    const pidFile = join(dir, "hang.pid");
    const script = join(dir, "hang.sh");
    await writeFile(script, `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 60\n`);
    await chmod(script, 0o755);
    const err = await startNatsServer({ binary: script, startTimeoutMs: 500 }).catch((e) => e);
    expect(err).toMatchObject({ code: "START_TIMEOUT" });
    const pid = Number(await readFile(pidFile, "utf8"));
    expect(isAlive(pid)).toBe(false);
  });

  it("refuses bad options at once with a TypeError", async () => {
    await expect(startNatsServer({ port: 70_000 })).rejects.toBeInstanceOf(TypeError);
    await expect(startNatsServer({ maxPayload: -1 })).rejects.toBeInstanceOf(TypeError);
    await expect(startNatsServer({ startTimeoutMs: 0 })).rejects.toBeInstanceOf(TypeError);
    await expect(startNatsServer({ maxPayload: 1.5 })).rejects.toBeInstanceOf(TypeError);
    await expect(startNatsCluster({ size: 0 })).rejects.toBeInstanceOf(TypeError);
  });
});

describe("the container runtime without an engine", () => {
  it("fails with DOCKER_UNAVAILABLE and says what to do", async () => {
    const host = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = "unix:///nonexistent/natsmesh-test/docker.sock";
    try {
      const err = await startNatsServer({ runtime: "container" }).catch((e) => e);
      expect(err).toMatchObject({ name: "NatsTestingError", code: "DOCKER_UNAVAILABLE" });
      expect(err.message).toContain("DOCKER_HOST");
    } finally {
      if (host === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = host;
    }
  });

  it("is opt-in: NATSMESH_TEST_DOCKER unset means a local process", async () => {
    const flag = process.env.NATSMESH_TEST_DOCKER;
    delete process.env.NATSMESH_TEST_DOCKER;
    try {
      await using server = await startNatsServer();
      expect(server.pid).toBeGreaterThan(0);
    } finally {
      if (flag !== undefined) process.env.NATSMESH_TEST_DOCKER = flag;
    }
  });

  it("refuses an unknown network at once", async () => {
    await expect(startNatsServer({ network: "overlay" as "host" })).rejects.toBeInstanceOf(
      TypeError,
    );
  });
});
