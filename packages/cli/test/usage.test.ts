import { killAllProcesses } from "@natsmesh/testing";
import { afterEach, describe, expect, it } from "vitest";
import { closedPort, runCli } from "./cli-process.js";

afterEach(killAllProcesses);

describe("natsmesh help and usage", () => {
  it("--help lists every command with a summary and exits 0", async () => {
    const r = await runCli(["--help"]);
    expect(r.code).toBe(0);
    const names = [
      ...["ls", "watch", "registry"],
      ...["keys generate", "keys publish", "token issue", "token inspect"],
    ];
    for (const name of names) expect(r.stdout).toMatch(new RegExp(`^  ${name} +\\S`, "m"));
    expect(r.stdout).toContain("--server URL");
    expect(r.stdout).toContain("--token JWT");
  });

  it("<group> --help lists the group's commands; <group> <command> --help its flags", async () => {
    const keys = await runCli(["keys", "--help"]);
    expect(keys.code).toBe(0);
    expect(keys.stdout).toContain("Usage: natsmesh keys <command> [options]");
    expect(keys.stdout).toMatch(/^ {2}keys generate +\S/m);
    expect(keys.stdout).toMatch(/^ {2}keys publish +\S/m);
    expect(keys.stdout).not.toMatch(/token issue/);
    const cases = [
      [["keys", "generate", "--help"], "Usage: natsmesh keys generate [options]", "--alg ALG"],
      [["keys", "publish", "-h"], "Usage: natsmesh keys publish <file> [options]", "JWKS"],
      [
        ["token", "issue", "--help"],
        "Usage: natsmesh token issue --key FILE --sub NAME --scope PATTERNS [options]",
        "--scope PATTERNS",
      ],
      [["token", "inspect", "--help"], "Usage: natsmesh token inspect [jwt] [options]", "NOT"],
      [["registry", "--help"], "Usage: natsmesh registry [options]", "--jwks JWKS"],
    ] as const;
    for (const [args, usage, flag] of cases) {
      const r = await runCli(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(usage);
      expect(r.stdout).toContain(flag);
    }
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
    [["registry", "--issuer", "me"], /--issuer needs --jwks \(or MESH_JWKS\)/],
    [["keys"], /keys needs a command: generate, publish/],
    [["token", "nope"], /unknown command "token nope" \(token has issue, inspect\)/],
    [["keys", "generate", "extra"], /unexpected argument "extra" for keys generate/],
    [["token", "issue", "--nope"], /unknown option --nope/],
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
