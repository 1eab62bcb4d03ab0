import { killAllProcesses } from "@natsmesh/testing";
import { afterEach, describe, expect, it } from "vitest";
import { closedPort, runCli } from "./cli-process.js";

afterEach(killAllProcesses);

describe("natsmesh help and usage", () => {
  it("--help lists every command with a summary, the global options and exits 0", async () => {
    const r = await runCli(["--help"]);
    expect(r.code).toBe(0);
    const names = [
      ...["up", "ls [service]", "watch [service]", "registry", "agent <module>"],
      "call <service.method> [json]",
      ...["keys generate", "keys publish <file>", "token issue", "token inspect [jwt]"],
    ];
    for (const name of names) {
      expect(r.stdout).toMatch(new RegExp(`^  ${name.replace(/[[\]]/g, "\\$&")} +\\S`, "m"));
    }
    expect(r.stdout).toContain("--server <URL>");
    expect(r.stdout).toContain("--token <JWT>");
    // Each global option names the variable it falls back on.
    const text = r.stdout.replace(/\s+/g, " ");
    for (const variable of ["NATS_URL", "MESH_PREFIX", "MESH_TOKEN", "LOG_LEVEL"]) {
      expect(text).toContain(`env: ${variable}`);
    }
  });

  it("<group> --help lists the group's commands; <group> <command> --help its flags", async () => {
    const keys = await runCli(["keys", "--help"]);
    expect(keys.code).toBe(0);
    expect(keys.stdout).toContain("Usage: natsmesh keys [options] [command]");
    expect(keys.stdout).toMatch(/^ {2}keys generate +\S/m);
    expect(keys.stdout).toMatch(/^ {2}keys publish <file> +\S/m);
    expect(keys.stdout).not.toMatch(/token issue/);
    const cases = [
      [["keys", "generate", "--help"], "Usage: natsmesh keys generate [options]", "--alg <ALG>"],
      [["keys", "publish", "-h"], "Usage: natsmesh keys publish [options] <file>", "JWKS"],
      [["token", "issue", "--help"], "Usage: natsmesh token issue [options]", "--scope <PATTERNS>"],
      [
        ["token", "inspect", "--help"],
        "Usage: natsmesh token inspect [options] [jwt]",
        "NOT verified",
      ],
      [["registry", "--help"], "Usage: natsmesh registry [options]", "--jwks <JWKS>"],
    ] as const;
    for (const [args, usage, flag] of cases) {
      const r = await runCli(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(usage);
      expect(r.stdout).toContain(flag);
      expect(r.stdout).toContain("Global options:");
    }
  });

  it("<command> --help shows the command's arguments and flags", async () => {
    const ls = await runCli(["ls", "--help"]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toContain("Usage: natsmesh ls [options] [service]");
    expect(ls.stdout).toMatch(/^ {2}service +Only instances of this service$/m);
    const registry = await runCli(["registry", "-h"]);
    expect(registry.code).toBe(0);
    expect(registry.stdout).toContain("--heartbeat-timeout <MS>");
    expect(registry.stdout.replace(/\s+/g, " ")).toMatch(
      /--heartbeat <MS> [^-]*\(env: MESH_HEARTBEAT_MS\)/,
    );
  });

  it("--version prints the package version", async () => {
    const r = await runCli(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it.each([
    [["nope"], /unknown command 'nope'/, "natsmesh"],
    [["lss"], /unknown command 'lss'\n\(Did you mean ls\?\)/, "natsmesh"],
    [["ls", "--nope"], /unknown option '--nope'/, "natsmesh ls"],
    [["--nope", "ls"], /unknown option '--nope'/, "natsmesh"],
    [["ls", "a", "b"], /too many arguments for 'ls'/, "natsmesh ls"],
    [["ls", "--server"], /option '--server <URL>' argument missing/, "natsmesh ls"],
    [["ls", "--json=yes"], /unknown option '--json=yes'/, "natsmesh ls"],
    [["ls", "not a name"], /'not a name' is invalid .*1-64 characters/, "natsmesh ls"],
    [["--prefix", "a b", "ls"], /'--prefix <P>' argument 'a b' is invalid/, "natsmesh"],
    [["registry", "--replicas", "9"], /integer from 1 to 5/, "natsmesh registry"],
    [["registry", "--issuer", "me"], /--issuer needs --jwks \(or MESH_JWKS\)/, "natsmesh registry"],
    [
      ["registry", "--signing-key", "key.json"],
      /--signing-key needs --jwks \(or MESH_JWKS\)/,
      "natsmesh registry",
    ],
    [
      ["registry", "--unsigned-presence"],
      /--unsigned-presence needs --jwks \(or MESH_JWKS\)/,
      "natsmesh registry",
    ],
    [["token", "nope"], /unknown command 'nope'/, "natsmesh token"],
    [["keys", "generate", "extra"], /too many arguments for 'generate'/, "natsmesh keys generate"],
    [
      ["keys", "generate", "--out", ""],
      /'--out <DIR>' argument '' is invalid/,
      "natsmesh keys generate",
    ],
    [
      ["token", "issue", "--nope"],
      /required option '--key <FILE>' not specified/,
      "natsmesh token issue",
    ],
  ])("exits 2 with a message and the usage for %j", async (args, message, usage) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    const [first, ...rest] = r.stderr.split("\n");
    expect(first).toMatch(/^natsmesh: /);
    expect(r.stderr).toMatch(message);
    expect(rest[0]).toMatch(/^\(Did you mean|^Usage: /);
    expect(r.stderr).toContain(`\nUsage: ${usage} [options]`);
    expect(r.stderr).toMatch(new RegExp(`\nRun "${usage} --help" for its (commands|options)\\.$`));
    expect(r.stdout).toBe("");
  });

  it.each([[[]], [["keys"]], [["token"]]])(
    "exits 2 with the help on stderr for %j, which names no command",
    async (args) => {
      const r = await runCli(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`Usage: ${["natsmesh", ...args].join(" ")} [options] [command]`);
      expect(r.stderr).toMatch(/^Commands:$/m);
      expect(r.stdout).toBe("");
    },
  );

  it("exits 2 for a bad value in the environment, naming the variable", async () => {
    const r = await runCli(["ls"], { MESH_PREFIX: "bad prefix" });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/'bad prefix' from env 'MESH_PREFIX' is invalid/);
    const level = await runCli(["ls"], { LOG_LEVEL: "loud" });
    expect(level.code).toBe(2);
    expect(level.stderr).toMatch(/'loud' from env 'LOG_LEVEL' is invalid. It must be one of/);
  });

  it("takes an empty variable as unset, as compose files often export them", async () => {
    const port = await closedPort();
    const r = await runCli(["ls", "--server", `nats://127.0.0.1:${port}`], {
      MESH_PREFIX: "",
      LOG_LEVEL: " ",
      MESH_TOKEN: "",
    });
    // Past option checks: it got as far as connecting.
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("connection refused");
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
