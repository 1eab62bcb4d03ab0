// Agents and registries as real processes, for the reliability scenarios and the soak
// (bench/soak.mjs): agents run fixtures/agent.mjs, registries the built `natsmesh registry`.
// Types: mesh-processes.d.mts.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { spawnProcess, startFixture } from "@natsmesh/testing";

/** The agent fixture. */
export const AGENT_SCRIPT = new URL("../fixtures/agent.mjs", import.meta.url);
/** The built CLI, as `npm run build` leaves it. */
export const CLI = fileURLToPath(new URL("../../../packages/cli/dist/bin.js", import.meta.url));

/** Settings every natsmesh process reads; cleared so the developer's own shell changes nothing. */
const MESH_VARIABLES = [
  "NATS_URL",
  "MESH_PREFIX",
  "LOG_LEVEL",
  "MESH_TOKEN",
  "MESH_TOKEN_FILE",
  "MESH_HEARTBEAT_MS",
  "MESH_JWKS",
  "MESH_ISSUER",
  "MESH_AUDIENCE",
  "MESH_MAX_TOKEN_LIFETIME",
  "MESH_SIGNING_KEY",
  "MESH_UNSIGNED_PRESENCE",
  "MESH_PRESENCE_KEYS",
  "MESH_INBOX_PREFIXES",
  "MESH_REPLICAS",
  "MESH_HTTP_PORT",
  "MESH_HTTP_HOST",
];

function meshEnv(mesh, env) {
  return {
    NATS_URL: Array.isArray(mesh.servers) ? mesh.servers.join(",") : mesh.servers,
    MESH_PREFIX: mesh.prefix,
    MESH_HEARTBEAT_MS: String(mesh.heartbeatMs),
    ...env,
  };
}

/** Starts an agent process and resolves once it serves. */
export async function startAgentProcess(mesh, options = {}) {
  const env = meshEnv(mesh, {
    ...(options.service === undefined ? {} : { AGENT_SERVICE: options.service }),
    ...(options.weight === undefined ? {} : { AGENT_WEIGHT: String(options.weight) }),
    ...(options.delayMs === undefined ? {} : { AGENT_DELAY_MS: String(options.delayMs) }),
    ...options.env,
  });
  const fixture = await startFixture(AGENT_SCRIPT, [], {
    env,
    unset: MESH_VARIABLES,
    timeoutMs: options.timeoutMs ?? 20_000,
  });
  return {
    id: fixture.info.id,
    record: fixture.info,
    process: fixture.process,
    kill: () => fixture.kill(),
    stop: (timeoutMs = 20_000) => fixture.stop("SIGTERM", timeoutMs),
  };
}

/** Starts `natsmesh registry` and resolves once it logged that it started. */
export async function startRegistryProcess(mesh, options = {}) {
  const args = [CLI, "registry"];
  if (options.leaseMs !== undefined) args.push("--lease", String(options.leaseMs));
  if (options.heartbeatTimeoutMs !== undefined) {
    args.push("--heartbeat-timeout", String(options.heartbeatTimeoutMs));
  }
  if (options.replicas !== undefined) args.push("--replicas", String(options.replicas));
  if (options.http === true) args.push("--http-port", "0");
  if (options.jwks !== undefined) args.push("--jwks", options.jwks);
  const proc = spawnProcess(process.execPath, args, {
    env: meshEnv(mesh, { LOG_LEVEL: "info", ...options.env }),
    unset: MESH_VARIABLES,
  });
  try {
    const at = await proc.waitFor(/"msg":"registry started"/, {
      timeoutMs: options.timeoutMs ?? 20_000,
    });
    const started = JSON.parse(proc.stdout[at]);
    const listening = proc.stdout.find((line) => line.includes('"msg":"http endpoint listening"'));
    return {
      id: started.registry,
      leaderAtStart: started.leader === true,
      httpPort: listening === undefined ? undefined : JSON.parse(listening).port,
      process: proc,
      kill: () => proc.kill(),
      stop: (timeoutMs = 20_000) => proc.stop("SIGTERM", timeoutMs),
    };
  } catch (err) {
    await proc.kill();
    throw err;
  }
}

/** A process's resident set size in bytes, from /proc (Linux); undefined once it is gone. */
export function rssOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

/** Asks an agent process for its memory and counters (bounded by `timeoutMs`). */
export async function probeAgent(nc, prefix, id, timeoutMs = 5000) {
  const msg = await nc.request(`${prefix}.test.probe.${id}`, "", { timeout: timeoutMs });
  return msg.json();
}

/** The call numbers among `numbers` that the agent `id` ran (bounded by `timeoutMs`). */
export async function seenBy(nc, prefix, id, numbers, timeoutMs = 5000) {
  const msg = await nc.request(`${prefix}.test.seen.${id}`, JSON.stringify(numbers), {
    timeout: timeoutMs,
  });
  return msg.json();
}
