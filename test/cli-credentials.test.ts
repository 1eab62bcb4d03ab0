import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Registry, startRegistry } from "@natsmesh/registry";
import {
  cleanup,
  freePorts,
  killAllProcesses,
  runProcess,
  spawnProcess,
  type TestProcess,
} from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, CLI_VARIABLES, removeTempDirs, tempDir } from "../packages/cli/test/cli-process.js";
import {
  AGENT_INBOX_PREFIXES,
  type PermissionedNats,
  PREFIX,
  provision,
  ROLES,
  startPermissionedNats,
} from "./nats-permissions.js";

// The natsmesh CLI as a user of docker/nats/permissions.conf: NATS credentials and the inbox
// prefix from flags or from the nats CLI's variables, on `agent`, `call` and `ls`; a refusal
// says so without printing the secret; and no secret reaches the output, --json included.

let nats: PermissionedNats;
let registry: Registry;
let dir: string;
let agent: TestProcess;

/** Variables of the process, and the NATS identity ones cleared unless given. */
function cli(args: readonly string[], env: Record<string, string> = {}) {
  return runProcess(process.execPath, [BIN, ...args], {
    env: { NATS_URL: nats.server.url, MESH_PREFIX: PREFIX, ...env },
    unset: CLI_VARIABLES,
    timeoutMs: 20_000,
  });
}

/** The caller's identity as the variables the nats CLI reads. */
function callerEnv(): Record<string, string> {
  const c = nats.credentials("caller");
  return {
    NATS_USER: c.user!,
    NATS_PASSWORD: c.password!,
    NATS_INBOX_PREFIX: ROLES.caller.inbox,
  };
}

beforeAll(async () => {
  nats = await startPermissionedNats();
  await provision(await nats.connect("admin"));
  registry = await startRegistry({
    servers: nats.server.url,
    prefix: PREFIX,
    credentials: nats.credentials("registry"),
    inboxPrefix: ROLES.registry.inbox,
  });
  dir = tempDir();
  const module = join(dir, "billing.mjs");
  await writeFile(
    module,
    'export default { service: "billing", methods: { charge: (p) => ({ charged: p }) } };\n',
  );
  const c = nats.credentials("agent");
  // Flags for the user and the inbox prefixes, the password from its variable.
  agent = spawnProcess(
    process.execPath,
    [
      BIN,
      "agent",
      module,
      "--user",
      c.user!,
      "--inbox-prefix",
      ROLES.agent.inbox,
      "--inbox-prefixes",
      AGENT_INBOX_PREFIXES.join(","),
      "--json",
    ],
    {
      env: { NATS_URL: nats.server.url, MESH_PREFIX: PREFIX, NATS_PASSWORD: c.password! },
      unset: CLI_VARIABLES,
    },
  );
  await agent.waitFor(/agent started/, { timeoutMs: 20_000 });
});
afterAll(async () => {
  await killAllProcesses();
  await cleanup(registry, nats);
  removeTempDirs();
});

describe("natsmesh with NATS credentials", () => {
  it("calls through the permission file as caller, from variables and from flags", async () => {
    const env = callerEnv();
    const fromEnv = await cli(["call", "billing.charge", "1", "--json"], env);
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(JSON.parse(fromEnv.stdout)).toEqual({ charged: 1 });
    const fromFlags = await cli(
      [
        "call",
        "billing.charge",
        "2",
        "--user",
        env.NATS_USER!,
        "--password",
        env.NATS_PASSWORD!,
        "--inbox-prefix",
        ROLES.caller.inbox,
      ],
      {},
    );
    expect(fromFlags.code, fromFlags.stderr).toBe(0);
    expect(JSON.parse(fromFlags.stdout)).toEqual({ charged: 2 });
  });

  it("takes the kind of credentials typed on the command line over the variables' other kinds", async () => {
    const env = callerEnv();
    // A NATS token left in the shell: --user/--password typed replace it, not join it.
    const typed = await cli(
      ["call", "billing.charge", "3", "--user", env.NATS_USER!, "--password", env.NATS_PASSWORD!],
      { NATS_TOKEN: "tStale1", NATS_INBOX_PREFIX: ROLES.caller.inbox },
    );
    expect(typed.code, typed.stderr).toBe(0);
    expect(JSON.parse(typed.stdout)).toEqual({ charged: 3 });
    // The same kind still combines: --password typed with NATS_USER from the shell.
    const mixed = await cli(["call", "billing.charge", "4", "--password", env.NATS_PASSWORD!], {
      NATS_USER: env.NATS_USER!,
      NATS_TOKEN: "tStale1",
      NATS_INBOX_PREFIX: ROLES.caller.inbox,
    });
    expect(mixed.code, mixed.stderr).toBe(0);
    expect(JSON.parse(mixed.stdout)).toEqual({ charged: 4 });
  });

  it("lists presence as caller, and never prints a password", async () => {
    const env = callerEnv();
    let listed = await cli(["ls", "--json"], env);
    for (let i = 0; i < 50 && !listed.stdout.includes("billing"); i++) {
      listed = await cli(["ls", "--json"], env);
    }
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { service: string }[]).map((r) => r.service)).toEqual([
      "billing",
    ]);
    for (const out of [listed.stdout, listed.stderr, agent.output()]) {
      expect(out).not.toContain(env.NATS_PASSWORD);
      expect(out).not.toContain(nats.credentials("agent").password);
    }
  });

  it("serves the dashboard as the dashboard user, everything from variables", async () => {
    const c = nats.credentials("dashboard");
    const [port] = await freePorts(1);
    const dashboard = spawnProcess(process.execPath, [BIN, "dashboard", "--json"], {
      env: {
        NATS_URL: nats.server.url,
        MESH_PREFIX: PREFIX,
        NATS_USER: c.user!,
        NATS_PASSWORD: c.password!,
        NATS_INBOX_PREFIX: ROLES.dashboard.inbox,
        MESH_DASHBOARD_HOST: "127.0.0.1",
        MESH_DASHBOARD_PORT: String(port),
      },
      unset: CLI_VARIABLES,
    });
    const line = await dashboard.waitFor(/^\{"url"/, { timeoutMs: 20_000 });
    const { url } = JSON.parse(dashboard.stdout[line]!) as { url: string };
    expect(url).toBe(`http://127.0.0.1:${port}/dashboard/`);
    // With a page open it asks billing for its stats, within the dashboard user's permissions.
    const page = new AbortController();
    await fetch(`${url}events`, { signal: page.signal });
    try {
      await expect
        .poll(
          async () => {
            const state = (await (await fetch(`${url}state`)).json()) as {
              instances: { service: string }[];
              services: Record<string, { stats: string }>;
            };
            return [state.instances.map((r) => r.service), state.services.billing?.stats];
          },
          { timeout: 20_000 },
        )
        .toEqual([["billing"], "ok"]);
    } finally {
      page.abort();
    }
    expect(await dashboard.stop("SIGTERM")).toBe(0);
    expect(dashboard.output()).not.toContain(c.password);
  });

  it("says NATS refused the credentials, exit 1, without the password", async () => {
    const r = await cli(["call", "billing.charge", "1"], {
      ...callerEnv(),
      NATS_PASSWORD: "pWrongSecret42",
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refused the credentials/);
    expect(r.stderr + r.stdout).not.toContain("pWrongSecret42");
  });

  it("refuses two kinds of credentials, or a password alone, as usage (exit 2)", async () => {
    const both = await cli(["ls", "--user", "u", "--nats-token", "tSecret1"], {});
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/one kind of NATS credentials/);
    expect(both.stderr).not.toContain("tSecret1");
    const alone = await cli(["ls"], { NATS_PASSWORD: "pAlone1" });
    expect(alone.code).toBe(2);
    expect(alone.stderr).toMatch(/--password needs --user/);
    const overlap = await cli(["ls", "--inbox-prefix", `${PREFIX}.inbox`], {});
    expect(overlap.code).toBe(2);
    const agentOverlap = await cli(["agent", "x.mjs", "--inbox-prefixes", `_INBOX,${PREFIX}.x`]);
    expect(agentOverlap.code).toBe(2);
    expect(agentOverlap.stderr).toMatch(/--inbox-prefixes/);
  });

  it("shows the NATS options on commands that connect, not on those that do not", async () => {
    const call = await cli(["call", "--help"]);
    expect(call.stdout).toMatch(/NATS connection options:/);
    for (const flag of [
      "--user",
      "--password",
      "--nats-token",
      "--creds",
      "--nkey",
      "--inbox-prefix",
    ]) {
      expect(call.stdout).toContain(flag);
    }
    // Help names the variables, never their values.
    const withSecret = await cli(["call", "--help"], { NATS_PASSWORD: "pHelpSecret9" });
    expect(withSecret.stdout).toContain("NATS_PASSWORD");
    expect(withSecret.stdout).not.toContain("pHelpSecret9");
    const offline = await cli(["token", "issue", "--help"]);
    expect(offline.stdout).not.toMatch(/--password/);
    // ...and do not read the NATS variables either: nothing there can fail them.
    const jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln";
    const inspect = await cli(["token", "inspect", jwt, "--json"], {
      NATS_USER: "u",
      NATS_TOKEN: "t",
      NATS_INBOX_PREFIX: `${PREFIX}.inbox`,
    });
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(JSON.parse(inspect.stdout).claims).toEqual({ sub: "x" });
  });
});
