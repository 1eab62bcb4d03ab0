import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { isMeshError } from "@natsmesh/protocol";
import { lookupPresence } from "@natsmesh/protocol/internal";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import {
  cleanup,
  freePorts,
  killAllProcesses,
  type NatsServer,
  setup,
  spawnProcess,
  startNatsServer,
  type TestProcess,
  type TestSetup,
  waitUntil,
} from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CLI_VARIABLES } from "../packages/cli/test/cli-process.js";
import {
  type ComposeFile,
  type ComposeService,
  interpolate,
  isNatsmeshService,
  readComposeFile,
} from "./docker/compose-file.js";
import { violations } from "./nats-permissions.js";

// docker/compose.yml and compose.cluster.yml without Docker: what the files promise is checked
// by reading them, and each natsmesh service of compose.yml is started as a local process with
// the command and environment the file gives it (NATS replaced by a test server), so the
// commands and variables are exercised on every run. test/docker/ runs the same files on a real
// Docker engine.

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = join(ROOT, "packages/cli/dist/bin.js");
/** Where the image keeps its files; the local runs use a temporary directory instead. */
const IMAGE_DATA = "/var/lib/natsmesh";

let single: ComposeFile;
let cluster: ComposeFile;

beforeAll(async () => {
  single = await readComposeFile(join(ROOT, "docker/compose.yml"));
  cluster = await readComposeFile(join(ROOT, "docker/compose.cluster.yml"));
});
afterEach(() => killAllProcesses());

function natsmeshServices(file: ComposeFile, profile?: string): [string, ComposeService][] {
  return Object.entries(file.services).filter(
    ([, s]) =>
      isNatsmeshService(s) &&
      (profile === undefined ? s.profiles === undefined : s.profiles?.includes(profile)),
  );
}

/**
 * The host file a NATS service mounts read-only at `target` (`./nats/x.conf:target:ro`, relative
 * to docker/), or `undefined`.
 */
function mountedFile(service: ComposeService, target: string): string | undefined {
  for (const volume of service.volumes ?? []) {
    const [source = "", at, mode] = volume.split(":");
    if (at === target && source.startsWith("./") && mode === "ro") {
      return join(ROOT, "docker", source);
    }
  }
  return undefined;
}

/** The users docker/nats/permissions.conf defines, and the password variables it reads. */
async function permissionFile(path: string): Promise<{ users: string[]; variables: string[] }> {
  const text = (await readFile(path, "utf8")).replace(/#.*$/gm, "");
  return {
    users: [...text.matchAll(/\{\s*user:\s*([\w-]+)/g)].map((m) => m[1]!),
    variables: [...text.matchAll(/password:\s*\$([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]!),
  };
}

/** `${VAR:-default}` resolved with the defaults, as with an empty environment. */
function environment(service: ComposeService): Record<string, string> {
  return Object.fromEntries(
    Object.entries(service.environment ?? {}).map(([k, v]) => [k, interpolate(String(v), {})]),
  );
}

describe("what the compose files promise", () => {
  it("runs NATS from the official image with JetStream, monitoring on 8222 and a named volume", () => {
    for (const [file, names] of [
      [single, ["nats", "nats-auth"]],
      [cluster, ["nats-1", "nats-2", "nats-3"]],
    ] as const) {
      for (const name of names) {
        const nats = file.services[name]!;
        expect(interpolate(nats.image!, {})).toMatch(/^nats:2\.\d+/);
        expect(nats.command).toContain("-js");
        expect(nats.command?.join(" ")).toContain("-m 8222");
        const volume = nats.volumes?.[0]?.split(":")[0] ?? "";
        expect(Object.keys(file.volumes ?? {})).toContain(volume);
        expect(nats.healthcheck?.test?.join(" ")).toContain(":8222/healthz");
      }
    }
  });

  it("publishes 8222 for NATS monitoring only, and every port on 127.0.0.1 only", () => {
    for (const file of [single, cluster]) {
      for (const [name, service] of Object.entries(file.services)) {
        for (const port of service.ports ?? []) {
          expect(port, `${name}: ${port}`).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
          const [, host, container] = port.split(":");
          if (host === "8222" || container === "8222") expect(name).toMatch(/^nats/);
        }
      }
    }
  });

  it("configures natsmesh through the environment only, and waits on healthchecks", () => {
    for (const file of [single, cluster]) {
      for (const [name, service] of Object.entries(file.services)) {
        expect(service.env_file, name).toBeUndefined();
        for (const volume of service.volumes ?? []) {
          // Named volumes only, but for the NATS permission file, read-only: natsmesh reads no
          // configuration file from the host.
          if (!isNatsmeshService(service) && volume.startsWith("./nats/")) {
            expect(volume, name).toMatch(/^\.\/nats\/[\w.-]+\.conf:\/etc\/nats\/[\w.-]+:ro$/);
            continue;
          }
          expect(Object.keys(file.volumes ?? {}), `${name}: ${volume}`).toContain(
            volume.split(":")[0],
          );
        }
        for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
          expect(condition, `${name} → ${dependency}`).toBe("service_healthy");
          expect(file.services[dependency]?.healthcheck?.test, dependency).toBeDefined();
        }
        if (!isNatsmeshService(service)) continue;
        expect(service.build?.context).toBe("..");
        const command = service.command ?? [];
        if (service.entrypoint === undefined) {
          // The command names what to run; every setting is a variable.
          expect(
            command.filter((a) => a.startsWith("-")),
            name,
          ).toEqual([]);
        }
      }
    }
  });

  it("runs two echo instances with weights 1 and 3, a greeter, a slow service and registries", () => {
    const weights = (file: ComposeFile) =>
      natsmeshServices(file)
        .filter(([, s]) => s.command?.[1] === "examples/services/echo.mjs")
        .map(([, s]) => environment(s).MESH_WEIGHT)
        .sort();
    for (const file of [single, cluster]) {
      expect(weights(file)).toEqual(["1", "3"]);
      const modules = natsmeshServices(file).map(([, s]) => s.command?.[1]);
      expect(modules).toEqual(
        expect.arrayContaining(["examples/services/greeter.mjs", "examples/services/slow.mjs"]),
      );
    }
    const registries = natsmeshServices(cluster).filter(([, s]) => s.command?.[0] === "registry");
    expect(registries).toHaveLength(2);
    for (const [, s] of registries) expect(environment(s).MESH_REPLICAS).toBe("3");
  });

  it("spreads the cluster's agents and registries over the three nodes", () => {
    const nodes = new Set(
      natsmeshServices(cluster).map(([, s]) => new URL(environment(s).NATS_URL!).hostname),
    );
    expect([...nodes].sort()).toEqual(["nats-1", "nats-2", "nats-3"]);
  });

  it("has an auth profile whose agents announce with tokens", () => {
    const secure = natsmeshServices(single, "auth");
    expect(secure.map(([n]) => n).sort()).toEqual([
      "keys",
      "secure-dashboard",
      "secure-echo",
      "secure-greeter",
      "secure-registry",
      "secure-slow",
    ]);
    for (const [name, s] of secure) {
      const command = s.command?.[0];
      if (command === "agent" || command === "registry") {
        expect(environment(s).MESH_JWKS, name).toBeDefined();
      }
      // The dashboard's token holds stats:*, which agents with auth on want for their traffic.
      if (command === "agent" || command === "dashboard") {
        expect(environment(s).MESH_TOKEN_FILE, name).toBeDefined();
        // Agents' nested calls and the dashboard take only records the registry signed.
        expect(environment(s).MESH_PRESENCE_KEYS, name).toBe(
          "/var/lib/natsmesh/keys/presence-jwks.json",
        );
      }
    }
  });

  it("signs presence in the auth profile: the private key only where the keys job and the registry mount it", () => {
    const registry = single.services["secure-registry"]!;
    const key = environment(registry).MESH_SIGNING_KEY;
    expect(key).toBe("/var/lib/natsmesh/presence/presence.private.jwk.json");
    expect(environment(registry).MESH_UNSIGNED_PRESENCE).toBeUndefined();
    const mounting = Object.entries(single.services)
      .filter(([, s]) => (s.volumes ?? []).some((v) => v.startsWith("mesh-presence:")))
      .map(([n]) => n)
      .sort();
    expect(mounting).toEqual(["keys", "secure-registry"]);
    expect(registry.volumes).toContain("mesh-presence:/var/lib/natsmesh/presence:ro");
  });

  it("runs the auth profile on its own NATS server with docker/nats/permissions.conf", async () => {
    const natsAuth = single.services["nats-auth"]!;
    expect(natsAuth.profiles).toEqual(["auth"]);
    const conf = natsAuth.command?.[natsAuth.command.indexOf("-c") + 1] ?? "";
    const file = mountedFile(natsAuth, conf);
    expect(file).toBe(join(ROOT, "docker/nats/permissions.conf"));
    const { users, variables } = await permissionFile(file!);
    // nats-server refuses to start on a variable it cannot find: nats-auth gives every one.
    const serverEnv = environment(natsAuth);
    expect(variables).toHaveLength(users.length);
    for (const v of variables) expect(serverEnv[v], v).toMatch(/^[A-Za-z][A-Za-z0-9]*$/);
    for (const [name, s] of natsmeshServices(single, "auth")) {
      if (name === "keys") continue;
      const env = environment(s);
      expect(env.NATS_URL, name).toBe("nats://nats-auth:4222");
      expect(users, name).toContain(env.NATS_USER);
      // Its password is the one nats-auth gives its user.
      const variable = `${env.NATS_USER!.replaceAll("-", "_").toUpperCase()}_PASSWORD`;
      expect(env.NATS_PASSWORD, name).toBe(serverEnv[variable]);
      expect(env.NATS_INBOX_PREFIX, name).toMatch(/^_INBOX_[a-z]+$/);
    }
  });

  it("the Dockerfile copies the package.json of every workspace before installing", async () => {
    const dockerfile = await readFile(join(ROOT, "docker/Dockerfile"), "utf8");
    const root = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
      workspaces: string[];
    };
    expect(root.workspaces).toEqual(["packages/*"]);
    const { readdir } = await import("node:fs/promises");
    for (const dir of await readdir(join(ROOT, "packages"))) {
      expect(dockerfile).toContain(`COPY packages/${dir}/package.json packages/${dir}/`);
    }
  });
});

/** Starts a compose service as a local process: its command, its environment, with `rewrite`. */
function runService(
  name: string,
  service: ComposeService,
  rewrite: (key: string, value: string) => string,
  path?: string,
): TestProcess {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(environment(service))) env[k] = rewrite(k, v);
  if (path !== undefined) env.PATH = path;
  const command = (service.command ?? []).map((a) => rewrite("", interpolate(a, {})));
  const [program, ...args] =
    service.entrypoint === undefined
      ? [process.execPath, CLI, ...command]
      : [...service.entrypoint, ...command];
  expect(program, name).toBeDefined();
  return spawnProcess(program!, args, {
    env,
    cwd: ROOT,
    // Nothing from the developer's shell may configure these processes: only the file does.
    unset: CLI_VARIABLES,
  });
}

describe("docker/compose.yml's natsmesh services as local processes", () => {
  let t: TestSetup;
  let dataDir: string;
  let shimDir: string;
  const meshes: Mesh[] = [];

  beforeAll(async () => {
    t = await setup({ tag: "compose" });
    dataDir = await mkdtemp(join(tmpdir(), "natsmesh-compose-"));
    // The auth profile's key job calls `natsmesh` by name, as in the image.
    shimDir = await mkdtemp(join(tmpdir(), "natsmesh-bin-"));
    await writeFile(
      join(shimDir, "natsmesh"),
      `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`,
    );
    await chmod(join(shimDir, "natsmesh"), 0o755);
  });

  afterAll(async () => {
    await killAllProcesses();
    await cleanup(t, ...meshes);
    await rm(dataDir, { recursive: true, force: true });
    await rm(shimDir, { recursive: true, force: true });
  });

  /**
   * NATS → the test server (`server` for nats-auth); the registry's HTTP endpoint and the
   * dashboard → 127.0.0.1, on `http` and `dashboard`; files → dataDir.
   */
  function rewriter(http: number, server?: NatsServer, dashboard = 0) {
    return (key: string, value: string): string => {
      if (key === "NATS_URL") {
        expect(value).toBe(server === undefined ? "nats://nats:4222" : "nats://nats-auth:4222");
        return (server ?? t.server).url;
      }
      if (key === "MESH_HTTP_HOST") return "127.0.0.1";
      if (key === "MESH_HTTP_PORT") return String(http);
      if (key === "MESH_DASHBOARD_HOST") return "127.0.0.1";
      if (key === "MESH_DASHBOARD_PORT") return String(dashboard);
      return value.replaceAll(IMAGE_DATA, dataDir);
    };
  }

  it("runs the registry and the example agents, which answer calls", async () => {
    const [http = 0] = await freePorts(1);
    const procs = natsmeshServices(single).map(([name, s]) => ({
      name,
      proc: runService(name, s, rewriter(http)),
    }));
    const healthy = await waitUntil(
      async () =>
        (await fetch(`http://127.0.0.1:${http}/healthz`).catch(() => undefined))?.ok === true,
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    expect(healthy, procs.map((p) => `${p.name}:\n${p.proc.output()}`).join("\n")).toBe(true);
    const mesh = await connectMesh({ servers: t.server.url });
    meshes.push(mesh);
    const all = await waitUntil(
      () =>
        mesh.instances("echo").length === 2 &&
        mesh.instances("greeter").length === 1 &&
        mesh.instances("slow").length === 1,
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    expect(all, procs.map((p) => `${p.name}:\n${p.proc.output()}`).join("\n")).toBe(true);
    expect(
      mesh
        .instances("echo")
        .map((i) => i.weight)
        .sort(),
      "the echo weights come from MESH_WEIGHT in docker/compose.yml: `natsmesh agent` must " +
        "read it (the --weight option's variable)",
    ).toEqual([1, 3]);
    expect(await mesh.request("echo", "say", { a: 1 })).toEqual({ a: 1 });
    const reply = (await mesh.request("greeter", "hello", { name: "compose" })) as {
      greeting: string;
    };
    expect(reply.greeting).toContain("compose");
    await expect(mesh.request("slow", "work", { ms: 5 })).resolves.toBeDefined();
    // docker stop sends SIGTERM: every service drains and exits 0.
    for (const { name, proc } of procs) expect(await proc.stop(), name).toBe(0);
    // Its waits (up to 20 + 30 s) must fit in the test's own time on a loaded machine.
  }, 120_000);

  it("runs the auth profile: nats-auth with the permission file, keys job, registry and agents with tokens and NATS users", async () => {
    const natsAuth = single.services["nats-auth"]!;
    const conf = natsAuth.command?.[natsAuth.command.indexOf("-c") + 1] ?? "";
    // nats-auth as the file runs it: the permission file, its passwords from the environment.
    await using server = await startNatsServer({
      runtime: "process",
      configFile: mountedFile(natsAuth, conf),
      env: environment(natsAuth),
    });
    const serverEnv = environment(natsAuth);
    const services = natsmeshServices(single, "auth");
    const path = `${shimDir}:${process.env.PATH ?? ""}`;
    const [dashboardPort = 0] = await freePorts(1);
    const rewrite = rewriter(0, server, dashboardPort);
    const [, keys] = services.find(([n]) => n === "keys")!;
    const keyJob = runService("keys", keys, rewrite, path);
    await keyJob.waitFor(/caller token/, { timeoutMs: 30_000 });
    const caller = (await readFile(join(dataDir, "keys/caller.jwt"), "utf8")).trim();
    const procs = services
      .filter(([n]) => n !== "keys")
      .map(([name, s]) => ({ name, proc: runService(name, s, rewrite) }));
    // From the host, as the README says: the caller user, its inbox prefix, the caller token,
    // and the registry's public presence keys: only records it signed are taken.
    const mesh = await connectMesh({
      servers: server.url,
      credentials: { user: "caller", password: serverEnv.CALLER_PASSWORD! },
      inboxPrefix: "_INBOX_caller",
      token: caller,
      presence: { keys: join(dataDir, "keys/presence-jwks.json") },
    });
    meshes.push(mesh);
    const all = await waitUntil(
      () => ["echo", "greeter", "slow"].every((s) => mesh.instances(s).length === 1),
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    expect(all, procs.map((p) => `${p.name}:\n${p.proc.output()}`).join("\n")).toBe(true);
    expect(mesh.presenceStats()).toMatchObject({ unsigned: 0, badSignature: 0 });
    // The private presence key is the keys job's and the registry's alone.
    const privateKey = join(dataDir, "presence/presence.private.jwk.json");
    expect((await stat(privateKey)).mode & 0o777).toBe(0o600);
    const reply = (await mesh.request("greeter", "hello", { name: "secure" })) as {
      greeting: string;
    };
    expect(reply.greeting).toContain("secure");
    const refused = await mesh
      .request("echo", "say", 1, { token: "not-a-token" })
      .catch((err: unknown) => err);
    expect(isMeshError(refused) && refused.code).toBe("UNAUTHENTICATED");

    // An agent's NATS user reads its own record, and may not write presence nor touch the
    // JetStream API beyond reading: what a hostile reply subject would make it do is refused.
    const echo = await connect({
      servers: server.url,
      user: "echo-agent",
      pass: serverEnv.ECHO_AGENT_PASSWORD!,
      inboxPrefix: "_INBOX_echo",
    });
    try {
      const [instance] = mesh.instances("echo");
      const found = await lookupPresence(echo, "mesh", "echo", instance!.id);
      expect(found.bucket && found.record?.id).toBe(instance!.id);
      const denied = violations(echo);
      const targets = [
        `$KV.mesh_presence.echo.${instance!.id}`,
        "$JS.API.STREAM.PURGE.KV_mesh_presence",
        "$JS.API.STREAM.DELETE.KV_mesh_registry",
        "$JS.API.STREAM.CREATE.hostile",
      ];
      for (const subject of targets) echo.publish(subject, "{}");
      await waitUntil(() => denied.length >= targets.length, { timeoutMs: 5000 });
      expect([...denied].sort()).toEqual(targets.map((s) => `publish ${s}`).sort());
    } finally {
      await echo.close();
    }
    expect(await mesh.request("echo", "say", 2)).toBe(2);

    // The dashboard, as the dashboard user with the keys job's stats:* token: with a page open,
    // every service's stats come in (agents with auth on refuse them without that token).
    const page = new AbortController();
    const dashboard = `http://127.0.0.1:${dashboardPort}/dashboard/`;
    const opened = await waitUntil(
      async () => {
        const events = await fetch(`${dashboard}events`, { signal: page.signal }).catch(
          () => undefined,
        );
        return events?.status === 200;
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    try {
      expect(opened, procs.map((p) => `${p.name}:\n${p.proc.output()}`).join("\n")).toBe(true);
      const stats = async () => {
        const state = (await (await fetch(`${dashboard}state`)).json()) as {
          services: Record<string, { stats: string }>;
        };
        return Object.fromEntries(Object.entries(state.services).map(([k, v]) => [k, v.stats]));
      };
      await expect
        .poll(stats, { timeout: 20_000 })
        .toEqual({ echo: "ok", greeter: "ok", slow: "ok" });
    } finally {
      page.abort();
    }
    for (const { name, proc } of procs) {
      expect(proc.output(), name).not.toMatch(/Permissions Violation|not in the presence bucket/);
      expect(await proc.stop(), name).toBe(0);
    }
    expect(await keyJob.stop()).toBe(0);
    // Key job, then agents and registry start as processes (waits up to 30 + 30 s): the default
    // 30 s timed out under load while every step was still within its own wait.
  }, 120_000);
});
