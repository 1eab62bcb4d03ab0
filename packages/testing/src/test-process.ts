import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { trackChild } from "./reaper.js";

/** Options of {@link spawnProcess}. */
export interface SpawnProcessOptions {
  /** Variables set on top of this process's environment (minus {@link unset}). @default {} */
  env?: Record<string, string>;
  /** Variables removed from the inherited environment, so a developer's shell cannot change a test. @default [] */
  unset?: readonly string[];
  /** Text written to the child's stdin, which is then closed; stdin is ignored otherwise. */
  input?: string;
  /** Working directory. @default this process's */
  cwd?: string;
}

/** Options of the bounded waits of a {@link TestProcess}. */
export interface WaitForOptions {
  /** First line index to look at. @default 0 */
  from?: number;
  /** @default "stdout" */
  stream?: "stdout" | "stderr";
  /** @default 10000 */
  timeoutMs?: number;
}

/** How a finished process ended. */
export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const live = new Set<TestProcess>();

/**
 * A child process run by a test, its output collected line by line. It is killed when the test
 * process exits, whatever the way, and every wait on it is bounded.
 */
export class TestProcess {
  readonly child: ChildProcess;
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly #exit: Promise<number | null>;
  #wake: (() => void)[] = [];

  constructor(command: string, args: readonly string[], options: SpawnProcessOptions = {}) {
    const env = { ...process.env };
    for (const name of options.unset ?? []) delete env[name];
    Object.assign(env, options.env);
    this.child = spawn(command, args, {
      env,
      cwd: options.cwd,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    trackChild(this.child);
    if (options.input !== undefined) this.child.stdin!.end(options.input);
    live.add(this);
    for (const [stream, lines] of [
      [this.child.stdout!, this.stdout],
      [this.child.stderr!, this.stderr],
    ] as const) {
      createInterface({ input: stream }).on("line", (line) => {
        lines.push(line);
        this.#notify();
      });
    }
    // A spawn failure (no such binary) arrives as "error" and then "close" with code -2 or so.
    this.child.once("error", (err) => this.stderr.push(String(err)));
    this.#exit = once(this.child, "close").then(([code]) => {
      live.delete(this);
      this.#notify();
      return code as number | null;
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /**
   * Waits (bounded) until a line at index `from` or later matches, and returns its index; fails
   * with everything the process printed when it does not come or the process exits first.
   */
  async waitFor(
    match: RegExp | ((line: string) => boolean),
    { from = 0, stream = "stdout", timeoutMs = 10_000 }: WaitForOptions = {},
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
            `${this.exited ? " (the process exited)" : ""}\n${this.output()}`,
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

  /** Everything printed so far, for failure messages. */
  output(): string {
    return `stdout:\n${this.stdout.join("\n")}\nstderr:\n${this.stderr.join("\n")}`;
  }

  /** Sends `signal` and waits (bounded) for the exit code. */
  stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 5_000): Promise<number | null> {
    if (!this.exited) this.child.kill(signal);
    return this.exit(timeoutMs);
  }

  /** Waits (bounded) for the exit code; past the bound, SIGKILLs and fails. */
  async exit(timeoutMs = 15_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.child.kill("SIGKILL");
        reject(new Error(`process ${this.pid} did not exit within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.#exit, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL if still running, then the exit. */
  async kill(): Promise<void> {
    if (!this.exited) this.child.kill("SIGKILL");
    await this.#exit;
  }

  /** Same as {@link TestProcess.kill}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.kill();
  }

  #notify(): void {
    for (const wake of this.#wake.splice(0)) wake();
  }
}

/** Starts `command` with `args`. */
export function spawnProcess(
  command: string,
  args: readonly string[],
  options?: SpawnProcessOptions,
): TestProcess {
  return new TestProcess(command, args, options);
}

/** Runs `command` to its end (bounded) and returns its exit code and output. */
export async function runProcess(
  command: string,
  args: readonly string[],
  options: SpawnProcessOptions & { timeoutMs?: number } = {},
): Promise<ProcessResult> {
  const proc = spawnProcess(command, args, options);
  const code = await proc.exit(options.timeoutMs);
  return { code, stdout: proc.stdout.join("\n"), stderr: proc.stderr.join("\n") };
}

/** A Node.js script run by a test, started once it printed its first line. */
export interface Fixture<T> {
  readonly process: TestProcess;
  /** The first stdout line, parsed as JSON: what the fixture tells the test once it runs. */
  readonly info: T;
  /** SIGKILL, then the exit. */
  kill(): Promise<void>;
  /** `signal` (SIGTERM by default), then the exit code (bounded). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

/**
 * Runs the Node.js script `script` with `args` and waits (bounded) for the JSON line it prints
 * once it is ready. Kills it, and fails with its output, when the line does not come.
 */
export async function startFixture<T>(
  script: string | URL,
  args: readonly string[] = [],
  options: SpawnProcessOptions & { timeoutMs?: number } = {},
): Promise<Fixture<T>> {
  const path = typeof script === "string" ? script : fileURLToPath(script);
  const proc = spawnProcess(process.execPath, [path, ...args], options);
  try {
    await proc.waitFor(() => true, { timeoutMs: options.timeoutMs ?? 15_000 });
    return {
      process: proc,
      info: JSON.parse(proc.stdout[0]!) as T,
      kill: () => proc.kill(),
      stop: (signal, timeoutMs) => proc.stop(signal, timeoutMs),
    };
  } catch (err) {
    await proc.kill();
    throw err;
  }
}

/** Kills every process the tests of this file left running; for `afterEach`/`afterAll`. */
export async function killAllProcesses(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill()));
}
