import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** The built binary, as `npm test` leaves it after `tsc -b`. */
export const BIN = fileURLToPath(new URL("../dist/bin.js", import.meta.url));

/** Variables the CLI reads; cleared so the developer's own shell cannot change a test. */
const CLI_VARIABLES = [
  "NATS_URL",
  "MESH_PREFIX",
  "LOG_LEVEL",
  "MESH_TOKEN",
  "MESH_HEARTBEAT_MS",
  "MESH_JWKS",
  "MESH_ISSUER",
  "MESH_AUDIENCE",
  "NO_COLOR",
];

function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = { ...process.env };
  for (const name of CLI_VARIABLES) delete base[name];
  return { ...base, ...env };
}

/** How a finished CLI process ended. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const live = new Set<CliProcess>();

/** A `natsmesh` child process whose output is read line by line. */
export class CliProcess {
  readonly child: ChildProcess;
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly #exit: Promise<number | null>;
  #wake: (() => void)[] = [];

  /** `input`, when given, is written to the process's stdin, which is then closed. */
  constructor(args: readonly string[], env: Record<string, string>, input?: string) {
    this.child = spawn(process.execPath, [BIN, ...args], {
      env: childEnv(env),
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    if (input !== undefined) this.child.stdin!.end(input);
    live.add(this);
    for (const [stream, lines] of [
      [this.child.stdout!, this.stdout],
      [this.child.stderr!, this.stderr],
    ] as const) {
      createInterface({ input: stream }).on("line", (line) => {
        lines.push(line);
        for (const w of this.#wake.splice(0)) w();
      });
    }
    this.#exit = once(this.child, "close").then(([code]) => {
      live.delete(this);
      for (const w of this.#wake.splice(0)) w();
      return code as number | null;
    });
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /**
   * Waits (bounded) until a line of `stream` at index `from` or later matches, and returns
   * its index; fails with everything printed so far when it does not come.
   */
  async waitFor(
    match: RegExp | ((line: string) => boolean),
    { from = 0, stream = "stdout", timeoutMs = 10_000 }: WaitOptions = {},
  ): Promise<number> {
    const test = typeof match === "function" ? match : (line: string) => match.test(line);
    const lines = stream === "stdout" ? this.stdout : this.stderr;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = lines.findIndex((line, i) => i >= from && test(line));
      if (at >= 0) return at;
      const left = deadline - Date.now();
      if (left <= 0 || this.exited) {
        throw new Error(
          `no ${stream} line matching ${String(match)} within ${timeoutMs} ms` +
            `${this.exited ? " (the process exited)" : ""}\n` +
            `stdout:\n${this.stdout.join("\n")}\nstderr:\n${this.stderr.join("\n")}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends `signal` and waits (bounded) for the exit code. */
  stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 5_000): Promise<number | null> {
    if (!this.exited) this.child.kill(signal);
    return this.exit(timeoutMs);
  }

  /** Waits (bounded) for the exit code; SIGKILLs and fails past the bound. */
  async exit(timeoutMs = 15_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.child.kill("SIGKILL");
        reject(new Error(`natsmesh did not exit within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.#exit, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL if still running, and wait for the exit. */
  async kill(): Promise<void> {
    if (!this.exited) this.child.kill("SIGKILL");
    await this.#exit;
  }
}

export interface WaitOptions {
  from?: number;
  stream?: "stdout" | "stderr";
  timeoutMs?: number;
}

/** Starts `natsmesh <args>` with `env` on top of a clean environment, and `input` on stdin. */
export function startCli(
  args: readonly string[],
  env: Record<string, string> = {},
  input?: string,
): CliProcess {
  return new CliProcess(args, env, input);
}

/** Runs `natsmesh <args>` to the end (bounded) and returns its exit code and output. */
export async function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
  timeoutMs = 15_000,
  input?: string,
): Promise<CliResult> {
  const cli = startCli(args, env, input);
  const code = await cli.exit(timeoutMs);
  return { code, stdout: cli.stdout.join("\n"), stderr: cli.stderr.join("\n") };
}

/** Kills every CLI process a test left running; for `afterEach`. */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((cli) => cli.kill()));
}

let seq = 0;

/** A mesh prefix no other test (or test process) uses. */
export function uniquePrefix(): string {
  return `cli${process.pid}x${seq++}`;
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
