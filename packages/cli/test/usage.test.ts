import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { killAll, runCli } from "./cli-process.js";

afterEach(killAll);

/** A loopback port nothing listens on: bound by us, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("natsmesh help and usage", () => {
  it("--help lists every command with a summary and exits 0", async () => {
    const r = await runCli(["--help"]);
    expect(r.code).toBe(0);
    for (const name of ["ls", "watch", "registry"])
      expect(r.stdout).toMatch(new RegExp(`^  ${name} +\\S`, "m"));
    expect(r.stdout).toContain("--server URL");
  });

  it("<command> --help shows the command's arguments and flags", async () => {
    const ls = await runCli(["ls", "--help"]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toContain("Usage: natsmesh ls [service] [options]");
    const registry = await runCli(["registry", "-h"]);
    expect(registry.code).toBe(0);
    expect(registry.stdout).toContain("--heartbeat-timeout MS");
  });

  it("--version prints the package version", async () => {
    const r = await runCli(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it.each([
    [["nope"], /unknown command "nope"/],
    [["ls", "--nope"], /unknown option --nope/],
    [["--nope", "ls"], /unknown option --nope/],
    [["ls", "a", "b"], /unexpected argument "b"/],
    [["ls", "--server"], /option --server needs a value/],
    [["ls", "--json=yes"], /option --json takes no value/],
    [["ls", "not a name"], /service must be/],
    [["--prefix", "a b", "ls"], /--prefix must be/],
    [["registry", "--replicas", "9"], /--replicas must be an integer from 1 to 5/],
    [[], /no command given/],
  ])("exits 2 with a message and the usage for %j", async (args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/Usage: natsmesh/);
    expect(r.stdout).toBe("");
  });

  it("exits 2 for a bad value in the environment, naming the variable", async () => {
    const r = await runCli(["ls"], { MESH_PREFIX: "bad prefix" });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/MESH_PREFIX must be/);
    const level = await runCli(["ls"], { LOG_LEVEL: "loud" });
    expect(level.code).toBe(2);
    expect(level.stderr).toMatch(/LOG_LEVEL must be one of/);
  });
});

describe("natsmesh without NATS", () => {
  it.each(["ls", "watch", "registry"])(
    "%s says once, clearly, that NATS is unreachable, exit 1",
    async (command) => {
      const port = await closedPort();
      const r = await runCli([command], { NATS_URL: `nats://127.0.0.1:${port}` });
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `natsmesh: cannot reach NATS at nats://127.0.0.1:${port} (connection refused). ` +
          "Is nats-server running? Set --server or NATS_URL.",
      );
      expect(r.stdout).toBe("");
    },
  );

  it("--server wins over NATS_URL", async () => {
    const [envPort, flagPort] = [await closedPort(), await closedPort()];
    const r = await runCli(["ls", "--server", `nats://127.0.0.1:${flagPort}`], {
      NATS_URL: `nats://127.0.0.1:${envPort}`,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`nats://127.0.0.1:${flagPort} (connection refused)`);
  });
});
