import { readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePorts, runProcess } from "@natsmesh/testing";
import { parse, stringify } from "yaml";

/** The repository's root directory. */
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/**
 * The Docker engine these tests use, from NATSMESH_DOCKER_HOST (`test/docker/engine.sh start`
 * prints it); undefined when none was given, and the tests are then skipped.
 */
export const engine = process.env.NATSMESH_DOCKER_HOST || undefined;

/** Why the Docker tests are skipped, for the message the suite prints. */
export const SKIP_MESSAGE =
  "Docker stack tests skipped: NATSMESH_DOCKER_HOST is unset. Start a private engine with " +
  '`set -a; eval "$(test/docker/engine.sh start)"; eval "$(test/docker/engine.sh images)"; set +a` ' +
  "(as root), or run .ci/run, which does so when it can.";

/** The environment every docker and compose command gets. */
export function dockerEnv(): Record<string, string> {
  return { DOCKER_HOST: engine ?? "" };
}

/** Runs a docker command (bounded); fails with its output when it exits non-zero. */
export async function docker(
  args: readonly string[],
  { env = {}, timeoutMs = 120_000, command = "docker" } = {},
): Promise<string> {
  const result = await runProcess(command, args, {
    env: { ...dockerEnv(), ...env },
    cwd: ROOT,
    timeoutMs,
  });
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} exited with ${result.code}\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result.stdout;
}

let composeCli: Promise<string[]> | undefined;

/**
 * `docker compose` (Compose v2) when the docker command has it, else Debian's `docker-compose`
 * (1.29); NATSMESH_COMPOSE (e.g. "docker-compose") chooses.
 */
export function composeCommand(): Promise<string[]> {
  composeCli ??= (async () => {
    const chosen = process.env.NATSMESH_COMPOSE;
    if (chosen) return chosen.split(" ");
    const v2 = await runProcess("docker", ["compose", "version"], { timeoutMs: 30_000 });
    return v2.code === 0 ? ["docker", "compose"] : ["docker-compose"];
  })();
  return composeCli;
}

/** A compose project run by a test. */
export interface Stack {
  readonly project: string;
  /** Runs `compose -p <project> -f <stack file> <args>` (bounded). */
  compose(args: readonly string[], timeoutMs?: number): Promise<string>;
  /** Ids of the project's containers, running or not. */
  containers(): Promise<string[]>;
}

/**
 * Merges `files` (docker/compose*.yml and a host-networking override) with `env` into one stack
 * file and returns a handle on the project. `compose config` does the merge, so both Compose
 * versions read the files as users' tools do; published ports are then dropped from services on
 * the host network, where they mean nothing and Compose 1.29 refuses them.
 */
export async function prepareStack(
  project: string,
  files: readonly string[],
  env: Record<string, string>,
  profiles: readonly string[] = [],
): Promise<Stack> {
  const cli = await composeCommand();
  const [command = "docker-compose", ...head] = cli;
  const withProfiles = profiles.flatMap((p) => ["--profile", p]);
  const run = (args: readonly string[], timeoutMs?: number) =>
    docker([...head, ...withProfiles, ...args], {
      env,
      command,
      ...(timeoutMs ? { timeoutMs } : {}),
    });
  const merged = await run(["-p", project, ...files.flatMap((f) => ["-f", f]), "config"]);
  const doc = parse(merged) as { services: Record<string, Record<string, unknown>> };
  for (const service of Object.values(doc.services)) {
    if (service.network_mode === "host") delete service.ports;
  }
  const file = join(tmpdir(), `natsmesh-${project}.yml`);
  await writeFile(file, stringify(doc));
  return {
    project,
    compose: (args, timeoutMs) => run(["-p", project, "-f", file, ...args], timeoutMs),
    containers: async () =>
      (
        await docker([
          "ps",
          "--all",
          "--quiet",
          "--filter",
          `label=com.docker.compose.project=${project}`,
        ])
      )
        .split("\n")
        .filter((id) => id !== ""),
  };
}

/**
 * The CA certificates npm needs inside the build that `image` does not already trust: those of
 * this machine's NODE_EXTRA_CA_CERTS bundle missing from the image's own bundle ("" when none).
 */
export async function extraCaCerts(image: string): Promise<string> {
  const bundle = process.env.NODE_EXTRA_CA_CERTS;
  if (!bundle) return "";
  const ours = certificates(await readFile(bundle, "utf8"));
  const theirs = new Set(
    certificates(
      await docker([
        "run",
        "--rm",
        "--network",
        "host",
        "--entrypoint",
        "cat",
        image,
        "/etc/ssl/certs/ca-certificates.crt",
      ]).catch(() => ""),
    ).map(squash),
  );
  return ours.filter((pem) => !theirs.has(squash(pem))).join("\n");
}

function certificates(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function squash(pem: string): string {
  return pem.replace(/\s+/g, "");
}

/** Builds docker/Dockerfile as `tag` on `baseImage` (bounded: a cold build installs from npm). */
export async function buildImage(tag: string, baseImage: string): Promise<void> {
  const ca = await extraCaCerts(baseImage);
  await docker(
    [
      "build",
      "--network",
      "host",
      "-f",
      "docker/Dockerfile",
      "--build-arg",
      `NODE_IMAGE=${baseImage}`,
      "--build-arg",
      `EXTRA_CA_CERTS=${ca}`,
      "-t",
      tag,
      ".",
    ],
    { timeoutMs: 20 * 60_000 },
  );
}

/** `count` free ports on 127.0.0.1, as strings for the environment. */
export async function ports(count: number): Promise<string[]> {
  return (await freePorts(count)).map(String);
}
