import { resolve } from "node:path";
import { checkInt } from "@natsmesh/protocol/internal";

/** Where a test server runs. */
export const NATS_RUNTIMES = ["auto", "process", "container"] as const;

/** One of {@link NATS_RUNTIMES}. */
export type NatsRuntime = (typeof NATS_RUNTIMES)[number];

/** How a container's ports reach this machine. */
export const CONTAINER_NETWORKS = ["bridge", "host"] as const;

/** One of {@link CONTAINER_NETWORKS}. */
export type ContainerNetwork = (typeof CONTAINER_NETWORKS)[number];

/** Options of `startNatsServer()`. */
export interface NatsServerOptions {
  /**
   * `"process"` spawns `nats-server`; `"container"` starts `image` through Testcontainers;
   * `"auto"` uses a container when the environment variable `NATSMESH_TEST_DOCKER` is `1` and
   * no `binary` was given, and a local process otherwise.
   * @default "auto"
   */
  runtime?: NatsRuntime;
  /** The `nats-server` executable (a name looked up on PATH, or a path). @default "nats-server" */
  binary?: string;
  /**
   * Client port. 0 lets the server pick a free one; either way the port is kept across
   * `restart()`.
   * @default 0
   */
  port?: number;
  /** Enable JetStream with a file store in a fresh temporary directory. @default true */
  jetstream?: boolean;
  /** The server's `max_payload` in bytes. @default undefined (the server's 1 MiB) */
  maxPayload?: number;
  /**
   * A nats-server configuration file to run with, as it is: a shipped permission set, say. The
   * listen address, ports and JetStream store still come from this helper's command-line flags
   * (so the file must not set `store_dir`, which nats-server refuses to take twice); `config`
   * and `maxPayload` are added after it. A relative path is taken from the current directory.
   * @default undefined
   */
  configFile?: string;
  /** Extra configuration file text (NATS conf syntax). Command-line flags win over it. @default undefined */
  config?: string;
  /**
   * Extra environment variables of the server: the values a configuration file reads as
   * `$NAME` (passwords, say). The process runtime adds them to this process's environment.
   * @default {}
   */
  env?: Readonly<Record<string, string>>;
  /** Extra command-line arguments for `nats-server`. @default [] */
  args?: readonly string[];
  /** Bound on every wait while starting: readiness, ports, first TCP connect. @default 10000 */
  startTimeoutMs?: number;
  /** How long `stop()` waits after SIGTERM before it sends SIGKILL. @default 10000 */
  stopTimeoutMs?: number;
  /**
   * Image for the container runtime: the official `nats` image or any image whose entrypoint is
   * `nats-server` (arguments are passed straight to it).
   * @default the environment variable `NATSMESH_TEST_NATS_IMAGE`, else "nats:2.10"
   */
  image?: string;
  /**
   * Network of the container runtime. `"bridge"` publishes the client and monitoring ports on
   * this machine's ports; `"host"` runs the container in this machine's network, listening on
   * 127.0.0.1 only (for engines without a bridge, and where private-range addresses must not be
   * used).
   * @default the environment variable `NATSMESH_TEST_DOCKER_NETWORK`, else "bridge"
   */
  network?: ContainerNetwork;
}

/** {@link NatsServerOptions} after defaults and validation. */
export interface ResolvedNatsServerOptions {
  readonly runtime: NatsRuntime;
  readonly binary: string;
  /** True when the caller chose the binary (which then implies the process runtime). */
  readonly binaryGiven: boolean;
  readonly port: number;
  readonly jetstream: boolean;
  readonly maxPayload: number | undefined;
  /** Absolute path of {@link NatsServerOptions.configFile}. */
  readonly configFile: string | undefined;
  readonly config: string | undefined;
  readonly env: Readonly<Record<string, string>>;
  readonly args: readonly string[];
  readonly startTimeoutMs: number;
  readonly stopTimeoutMs: number;
  readonly image: string;
  readonly network: ContainerNetwork;
}

/** Defaults of {@link NatsServerOptions}. */
export const DEFAULT_NATS_SERVER_OPTIONS = {
  runtime: "auto",
  binary: "nats-server",
  port: 0,
  jetstream: true,
  args: [],
  startTimeoutMs: 10_000,
  stopTimeoutMs: 10_000,
  image: "nats:2.10",
  network: "bridge",
} as const satisfies NatsServerOptions;

/** Validates `options` and fills in defaults, into a new object. Throws `TypeError` on misuse. */
export function resolveNatsServerOptions(
  options: NatsServerOptions = {},
): ResolvedNatsServerOptions {
  const d = DEFAULT_NATS_SERVER_OPTIONS;
  const runtime = options.runtime ?? d.runtime;
  if (!NATS_RUNTIMES.includes(runtime)) {
    throw new TypeError(
      `runtime must be one of ${NATS_RUNTIMES.join(", ")}, got ${String(runtime)}`,
    );
  }
  const binary = options.binary ?? d.binary;
  if (typeof binary !== "string" || binary === "") {
    throw new TypeError("binary must be a non-empty string");
  }
  const port = checkInt(options.port ?? d.port, "port", 0, 65_535);
  const maxPayload =
    options.maxPayload === undefined
      ? undefined
      : checkInt(options.maxPayload, "maxPayload", 1, Number.MAX_SAFE_INTEGER);
  const configFile = options.configFile;
  if (configFile !== undefined && (typeof configFile !== "string" || configFile === "")) {
    throw new TypeError("configFile must be a non-empty path");
  }
  const serverEnv = options.env ?? {};
  if (
    serverEnv === null ||
    typeof serverEnv !== "object" ||
    Object.entries(serverEnv).some(([k, v]) => k === "" || typeof v !== "string")
  ) {
    throw new TypeError("env must be an object of string values");
  }
  const args = options.args ?? d.args;
  if (!Array.isArray(args) || args.some((a) => typeof a !== "string")) {
    throw new TypeError("args must be an array of strings");
  }
  const image = options.image ?? env("NATSMESH_TEST_NATS_IMAGE") ?? d.image;
  if (typeof image !== "string" || image === "") {
    throw new TypeError("image must be a non-empty string");
  }
  const network = options.network ?? env("NATSMESH_TEST_DOCKER_NETWORK") ?? d.network;
  if (!(CONTAINER_NETWORKS as readonly string[]).includes(network)) {
    throw new TypeError(
      `network (or NATSMESH_TEST_DOCKER_NETWORK) must be one of ${CONTAINER_NETWORKS.join(", ")}, got ${String(network)}`,
    );
  }
  return {
    runtime,
    binary,
    binaryGiven: options.binary !== undefined,
    port,
    jetstream: options.jetstream ?? d.jetstream,
    maxPayload,
    configFile: configFile === undefined ? undefined : resolve(configFile),
    config: options.config,
    env: { ...serverEnv },
    args: [...args],
    startTimeoutMs: positive("startTimeoutMs", options.startTimeoutMs ?? d.startTimeoutMs),
    stopTimeoutMs: positive("stopTimeoutMs", options.stopTimeoutMs ?? d.stopTimeoutMs),
    image,
    network: network as ContainerNetwork,
  };
}

function env(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === "" ? undefined : value;
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new TypeError(`${name} must be a positive number, got ${value}`);
  }
  return value;
}

/**
 * The configuration file text for `options`, or undefined when none is needed. `max_payload`
 * has no command-line flag, so it always goes through a file. `include` names the caller's
 * `configFile` as the written file must refer to it: nats-server reads an include relative to
 * the including file's directory.
 */
export function configText(
  options: ResolvedNatsServerOptions,
  include?: string,
): string | undefined {
  const lines: string[] = [];
  if (include !== undefined) lines.push(`include ${JSON.stringify(include)}`);
  if (options.config !== undefined) lines.push(options.config);
  // Last, so the explicit option wins over the same key in the caller's text.
  if (options.maxPayload !== undefined) lines.push(`max_payload: ${options.maxPayload}`);
  return lines.length === 0 ? undefined : `${lines.join("\n")}\n`;
}

/** Whether `options` add configuration text of their own to (or instead of) a `configFile`. */
export function hasConfigText(options: ResolvedNatsServerOptions): boolean {
  return configText(options) !== undefined;
}
