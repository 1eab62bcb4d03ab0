import { type Agent, MeshError, startAgent } from "@natsmesh/agent";
import { generateKeyPair, issueToken } from "@natsmesh/protocol";
import { type Registry, startRegistry } from "@natsmesh/registry";
import { cleanup, killAllProcesses, setup, type TestSetup, uniquePrefix } from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { closedPort, runCli } from "./cli-process.js";

let t: TestSetup;
let prefix: string;
let env: Record<string, string>;
const started: (Agent | Registry)[] = [];

async function load(name: string) {
  const url = new URL(`../../../examples/services/${name}.mjs`, import.meta.url);
  return ((await import(url.href)) as { default: Parameters<typeof startAgent>[0] }).default;
}

beforeAll(async () => {
  t = await setup({ tag: "call" });
  prefix = uniquePrefix("call");
  env = { NATS_URL: t.server.url, MESH_PREFIX: prefix };
  const base = { servers: t.server.url, prefix };
  started.push(await startRegistry(base));
  for (const name of ["echo", "slow"])
    started.push(await startAgent({ ...base, ...(await load(name)) }));
  started.push(
    await startAgent({
      ...base,
      service: "bank",
      version: "2.1.0",
      methods: {
        charge: () => {
          throw new MeshError("INSUFFICIENT_FUNDS", "balance too low", {
            status: 409,
            data: { balance: 3 },
          });
        },
        crash: () => {
          throw new Error("a secret detail");
        },
        nothing: () => undefined,
      },
    }),
  );
});
afterEach(killAllProcesses);
afterAll(() => cleanup(t, ...started));

describe("natsmesh call", () => {
  it("prints the reply indented for people, exit 0", async () => {
    const r = await runCli(["call", "echo.say", '{"a":[1,2],"b":"x"}'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('{\n  "a": [\n    1,\n    2\n  ],\n  "b": "x"\n}');
    expect(r.stderr).toBe("");
  });

  it("prints the reply as one line of JSON with --json", async () => {
    const r = await runCli(["call", "echo.say", '{"a":[1,2]}', "--json"], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('{"a":[1,2]}');
  });

  it("reads the payload from stdin for -, and sends none without one", async () => {
    const piped = await runCli(["call", "echo.say", "-", "--json"], env, 15_000, '"from stdin"\n');
    expect(piped.code).toBe(0);
    expect(piped.stdout).toBe('"from stdin"');
    const none = await runCli(["call", "bank.nothing"], env);
    expect(none.code).toBe(0);
    expect(none.stdout).toBe("null");
  });

  it("balances with --balance and filters with --version, through presence", async () => {
    const weighted = await runCli(
      ["call", "bank.nothing", "--balance", "weighted", "--version", "^2", "--json"],
      env,
    );
    expect(weighted.code, weighted.stderr).toBe(0);
    expect(weighted.stdout).toBe("null");
    // --version alone picks among the matching instances (weighted).
    const matching = await runCli(["call", "bank.nothing", "--version", "2.x"], env);
    expect(matching.code, matching.stderr).toBe(0);
  });

  it("exits 4 with the code, status and message of an error the service answered", async () => {
    const r = await runCli(["call", "bank.charge", "{}"], env);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      'natsmesh: bank.charge: INSUFFICIENT_FUNDS (409): balance too low\nnatsmesh: data: {"balance":3}',
    );
    const json = await runCli(["call", "bank.charge", "{}", "--json"], env);
    expect(json.code).toBe(4);
    expect(JSON.parse(json.stderr)).toEqual({
      error: {
        code: "INSUFFICIENT_FUNDS",
        status: 409,
        message: "balance too low",
        data: { balance: 3 },
      },
    });
  });

  it("exits 4 for BAD_REQUEST, NOT_FOUND and INTERNAL, without the handler's secrets", async () => {
    const bad = await runCli(["call", "slow.work", '{"ms":-1}'], env);
    expect(bad.code).toBe(4);
    expect(bad.stderr).toMatch(/^natsmesh: slow\.work: BAD_REQUEST \(400\): /);
    const missing = await runCli(["call", "echo.shout", "--json"], env);
    expect(missing.code).toBe(4);
    expect(JSON.parse(missing.stderr)).toMatchObject({ error: { code: "NOT_FOUND", status: 404 } });
    const crash = await runCli(["call", "bank.crash"], env);
    expect(crash.code).toBe(4);
    expect(crash.stderr).toContain("INTERNAL (500)");
    expect(crash.stderr).not.toContain("secret");
  });

  it("exits 3 when no instance answers, and says what to check", async () => {
    const r = await runCli(["call", "nobody.hello", "{}", "--timeout", "2000"], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^natsmesh: nobody\.hello: UNAVAILABLE \(503\): /);
    expect(r.stderr).toContain("is an agent of nobody running? `natsmesh ls nobody`");
    const json = await runCli(["call", "nobody.hello", "--json", "--timeout", "2000"], env);
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: "UNAVAILABLE", status: 503 } });
  });

  it("exits 3 when the call does not finish within --timeout", async () => {
    const before = Date.now();
    const r = await runCli(["call", "slow.work", '{"ms":5000}', "--timeout", "300"], env);
    expect(r.code).toBe(3);
    expect(Date.now() - before).toBeLessThan(4_500);
    expect(r.stderr).toMatch(/DEADLINE_EXCEEDED \(504\)/);
    expect(r.stderr).toContain("--timeout gives the call more time");
  });

  it("sends --token (or MESH_TOKEN) to agents that check tokens; exit 4 without one", async () => {
    const pair = await generateKeyPair();
    const secured = await startAgent({
      servers: t.server.url,
      prefix,
      service: "vault",
      auth: { jwks: { keys: [pair.publicJwk] } },
      methods: { open: () => "opened" },
    });
    started.push(secured);
    const token = await issueToken({ key: pair.privateJwk, sub: "cli", scope: "vault.*" });
    const denied = await runCli(["call", "vault.open"], env);
    expect(denied.code).toBe(4);
    expect(denied.stderr).toContain("UNAUTHENTICATED (401)");
    expect(denied.stderr).toContain("pass a token with --token (or MESH_TOKEN, MESH_TOKEN_FILE)");
    const flag = await runCli(["call", "vault.open", "--token", token, "--json"], env);
    expect(flag.code, flag.stderr).toBe(0);
    expect(flag.stdout).toBe('"opened"');
    const variable = await runCli(["call", "vault.open", "--json"], { ...env, MESH_TOKEN: token });
    expect(variable.stdout).toBe('"opened"');
    const other = await issueToken({ key: pair.privateJwk, sub: "cli", scope: "echo.*" });
    const forbidden = await runCli(["call", "vault.open", "--token", other], env);
    expect(forbidden.code).toBe(4);
    expect(forbidden.stderr).toContain("FORBIDDEN (403)");
  });
});

describe("natsmesh call usage", () => {
  it.each([
    [["call"], /missing required argument 'service\.method'/],
    [
      ["call", "echo"],
      /value 'echo' is invalid for argument 'service\.method'\. It must be <service>\.<method>/,
    ],
    [["call", "echo.say.more"], /It must be <service>\.<method>/],
    [["call", "ec ho.say"], /It must be <service>\.<method>/],
    [["call", "echo.say", "{nope"], /the payload is not JSON/],
    [["call", "echo.say", "--balance", "fastest"], /It must be one of queue, random, weighted/],
    [["call", "echo.say", "--timeout", "0"], /It must be an integer from 1 to/],
  ])("%j exits 2", async (args, message) => {
    const r = await runCli(args, env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe("");
  });

  it("exits 2 for a version range the SDK cannot read", async () => {
    const r = await runCli(["call", "echo.say", "--version", ">>1 !!"], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^natsmesh: .*version/);
  });

  it("exits 1 with one line when NATS is unreachable", async () => {
    const r = await runCli(["call", "echo.say"], {
      NATS_URL: `nats://127.0.0.1:${await closedPort()}`,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^natsmesh: cannot reach NATS at .*Is nats-server running\? Set --server or NATS_URL\.$/,
    );
  });

  it("documents its exit codes in --help", async () => {
    const r = await runCli(["call", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: natsmesh call [options] <service.method> [json]");
    for (const line of [
      /^ {2}0 {2}the reply is on stdout/m,
      /^ {2}1 /m,
      /^ {2}2 {2}usage/m,
      /^ {2}3 {2}unavailable/m,
      /^ {2}4 {2}the service answered/m,
    ]) {
      expect(r.stdout).toMatch(line);
    }
  });
});
