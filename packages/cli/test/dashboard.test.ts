import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Agent, startAgent } from "@natsmesh/agent";
import { generateKeyPair, issueToken } from "@natsmesh/protocol";
import { type Registry, startRegistry } from "@natsmesh/registry";
import {
  cleanup,
  freePorts,
  killAllProcesses,
  setup,
  type TestSetup,
  uniquePrefix,
} from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { closedPort, removeTempDirs, runCli, startCli, tempDir } from "./cli-process.js";

let t: TestSetup;

beforeAll(async () => {
  t = await setup();
});
afterEach(killAllProcesses);
afterAll(async () => {
  removeTempDirs();
  await cleanup(t);
});

interface State {
  prefix: string;
  instances: { id: string }[];
  services: Record<string, { stats: string }>;
}

describe("natsmesh dashboard", () => {
  let registry: Registry | undefined;
  let agent: Agent | undefined;
  afterEach(() => cleanup(registry, agent));

  it("serves the page of the mesh, prints its URL as JSON, and exits 0 on SIGTERM", async () => {
    const prefix = uniquePrefix();
    registry = await startRegistry({ servers: t.server.url, prefix });
    agent = await startAgent({
      servers: t.server.url,
      prefix,
      service: "echo",
      methods: { say: (p) => p },
    });
    const cli = startCli(["dashboard", "--port", "0", "--json"], {
      NATS_URL: t.server.url,
      MESH_PREFIX: prefix,
    });
    const line = await cli.waitFor(/^\{"url"/);
    const { url, host, port } = JSON.parse(cli.stdout[line]!) as {
      url: string;
      host: string;
      port: number;
    };
    expect(host).toBe("127.0.0.1");
    expect(url).toBe(`http://127.0.0.1:${port}/dashboard/`);
    expect((await fetch(url)).status).toBe(200);
    await expect
      .poll(
        async () => {
          const state = (await (await fetch(`${url}state`)).json()) as State;
          return [state.prefix, state.instances.map((r) => r.id)];
        },
        { timeout: 10_000 },
      )
      .toEqual([prefix, [agent.id]]);
    expect(await cli.stop("SIGTERM")).toBe(0);
    expect(cli.stderr).toEqual([]);
    await expect(fetch(url)).rejects.toThrow();
  });

  it("prints the URL for people, and says so when the port is taken", async () => {
    const prefix = uniquePrefix();
    const env = { NATS_URL: t.server.url, MESH_PREFIX: prefix };
    const first = startCli(["dashboard", "--port", "0"], env);
    const at = await first.waitFor(/^natsmesh dashboard: http:\/\/127\.0\.0\.1:\d+\/dashboard\//);
    const port = /:(\d+)\//.exec(first.stdout[at]!)![1]!;
    const taken = await runCli(["dashboard", "--port", port], env);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain(`port ${port} on 127.0.0.1 is in use; pick another with --port`);
    expect(await first.stop("SIGTERM")).toBe(0);
  });

  it("takes its address from MESH_DASHBOARD_HOST/PORT and its token from MESH_TOKEN_FILE", async () => {
    const prefix = uniquePrefix();
    const keys = await generateKeyPair();
    registry = await startRegistry({ servers: t.server.url, prefix });
    // An agent that shows its traffic only to a token whose scope holds stats:*.
    agent = await startAgent({
      servers: t.server.url,
      prefix,
      service: "echo",
      auth: { jwks: keys.jwks },
      methods: { say: (p) => p },
    });
    const tokenFile = join(tempDir(), "dashboard.jwt");
    await writeFile(
      tokenFile,
      `${await issueToken({ key: keys.privateJwk, sub: "dashboard", scope: "stats:*" })}\n`,
    );
    const [port] = await freePorts(1);
    // 127.0.0.2 is loopback too, and no default: the host must come from the variable.
    const cli = startCli(["dashboard", "--json"], {
      NATS_URL: t.server.url,
      MESH_PREFIX: prefix,
      MESH_DASHBOARD_HOST: "127.0.0.2",
      MESH_DASHBOARD_PORT: String(port),
      MESH_TOKEN_FILE: tokenFile,
    });
    const line = await cli.waitFor(/^\{"url"/);
    const { url } = JSON.parse(cli.stdout[line]!) as { url: string };
    expect(url).toBe(`http://127.0.0.2:${port}/dashboard/`);
    // Stats are asked for while a page is open: hold its event stream open.
    const page = new AbortController();
    const events = await fetch(`${url}events`, { signal: page.signal });
    expect(events.status).toBe(200);
    try {
      await expect
        .poll(
          async () => {
            const state = (await (await fetch(`${url}state`)).json()) as State;
            return state.services.echo?.stats;
          },
          { timeout: 15_000 },
        )
        .toBe("ok");
    } finally {
      page.abort();
    }
    expect(await cli.stop("SIGTERM")).toBe(0);
  });

  it("fails with one line when NATS is unreachable", async () => {
    const result = await runCli(["dashboard", "--port", "0"], {
      NATS_URL: `nats://127.0.0.1:${await closedPort()}`,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot reach NATS at .*Is nats-server running\?/);
  });
});
