import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type ProcessResult,
  runProcess,
  type SpawnProcessOptions,
  spawnProcess,
  type TestProcess,
} from "@natsmesh/testing";

/** The built binary, as `npm test` leaves it after `tsc -b`. */
export const BIN = fileURLToPath(new URL("../dist/bin.js", import.meta.url));

/** Variables the CLI reads; cleared so the developer's own shell cannot change a test. */
export const CLI_VARIABLES = [
  "NATS_URL",
  "MESH_PREFIX",
  "LOG_LEVEL",
  "MESH_TOKEN",
  "MESH_HEARTBEAT_MS",
  "MESH_JWKS",
  "MESH_SIGNING_KEY",
  "MESH_UNSIGNED_PRESENCE",
  "MESH_PRESENCE_KEYS",
  "MESH_ISSUER",
  "MESH_AUDIENCE",
  "MESH_TOKEN_FILE",
  "MESH_WEIGHT",
  "MESH_ZONE",
  "MESH_VERSION",
  "MESH_CONCURRENCY",
  "MESH_DRAIN_TIMEOUT_MS",
  "MESH_INBOX_PREFIXES",
  "MESH_DASHBOARD_HOST",
  "MESH_DASHBOARD_PORT",
  "MESH_HTTP_HOST",
  "MESH_HTTP_PORT",
  "MESH_REPLICAS",
  "MESH_METRICS_HOST",
  "MESH_METRICS_PORT",
  "NATS_USER",
  "NATS_PASSWORD",
  "NATS_TOKEN",
  "NATS_CREDS",
  "NATS_NKEY",
  "NATS_INBOX_PREFIX",
  "NO_COLOR",
];

function cliOptions(env: Record<string, string>, input: string | undefined): SpawnProcessOptions {
  return { env, unset: CLI_VARIABLES, ...(input === undefined ? {} : { input }) };
}

/** Starts `natsmesh <args>` with `env` on top of a clean environment, and `input` on stdin. */
export function startCli(
  args: readonly string[],
  env: Record<string, string> = {},
  input?: string,
): TestProcess {
  return spawnProcess(process.execPath, [BIN, ...args], cliOptions(env, input));
}

/** Runs `natsmesh <args>` to the end (bounded) and returns its exit code and output. */
export function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
  timeoutMs = 15_000,
  input?: string,
): Promise<ProcessResult> {
  return runProcess(process.execPath, [BIN, ...args], { ...cliOptions(env, input), timeoutMs });
}

/** A new empty directory under the system's temporary directory, removed by {@link removeTempDirs}. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "natsmesh-cli-"));
  tempDirs.push(dir);
  return dir;
}

const tempDirs: string[] = [];

/** Removes every directory {@link tempDir} made; for `afterAll`. */
export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A loopback port nothing listens on: bound by us, then released. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
