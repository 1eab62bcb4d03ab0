import { type ChildProcess, spawn } from "node:child_process";
import { settledWithin } from "@natsmesh/protocol/internal";
import { INSTALL_HINT, NatsTestingError } from "./errors.js";
import { type ReportedPorts, readPortsFile } from "./ports.js";
import { trackChild } from "./reaper.js";
import { canConnect, waitUntil } from "./wait.js";

const READY_LINE = "Server is ready";
/** How nats-server reports, for any of its listeners, that the port is taken. */
const PORT_IN_USE_LINE = "address already in use";
const TAIL_LINES = 40;
/** After SIGKILL the kernel ends the process at once; this only guards against the absurd. */
const KILL_BOUND_MS = 5_000;

/** What to run. */
export interface NatsProcessSpec {
  binary: string;
  args: readonly string[];
  /** The `--ports_file_dir` given in `args`, read to learn the ports chosen with `-1`. */
  portsDir: string;
  startTimeoutMs: number;
  /** Added to this process's environment. */
  env?: Readonly<Record<string, string>>;
}

/** One run of one nats-server process, from spawn to exit. */
export interface NatsProcess {
  readonly pid: number | undefined;
  /** Resolves with the ports once the server accepts clients; rejects if it never does. */
  readonly ready: Promise<ReportedPorts>;
  /** Resolves when the process has exited (or never started); never rejects. */
  readonly exited: Promise<void>;
  readonly hasExited: boolean;
  /** Sends `signal`; after SIGTERM, escalates to SIGKILL once `graceMs` has passed. */
  terminate(signal: "SIGTERM" | "SIGKILL", graceMs: number): Promise<void>;
}

/** Spawns nats-server and watches it become ready. The returned handle is live at once. */
export function spawnNatsProcess(spec: NatsProcessSpec): NatsProcess {
  return new ChildNatsProcess(spec);
}

class ChildNatsProcess implements NatsProcess {
  readonly ready: Promise<ReportedPorts>;
  readonly exited: Promise<void>;
  #child: ChildProcess;
  #spec: NatsProcessSpec;
  #tail: string[] = [];
  #partial = "";
  #exitedFlag = false;
  #exitReason = "";
  #spawnError: NodeJS.ErrnoException | undefined;
  #sawReady = false;
  #onChange: (() => void) | undefined;

  constructor(spec: NatsProcessSpec) {
    this.#spec = spec;
    this.#child = spawn(spec.binary, spec.args, {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, ...spec.env },
    });
    if (this.#child.pid !== undefined) trackChild(this.#child);
    // nats-server logs to stderr; keep reading it for the whole run, or a chatty server would
    // block on a full pipe.
    this.#child.stderr?.setEncoding("utf8");
    this.#child.stderr?.on("data", (chunk: string) => this.#onStderr(chunk));
    this.exited = new Promise((resolve) => {
      const finish = (): void => {
        this.#exitedFlag = true;
        this.#onChange?.();
        resolve();
      };
      this.#child.once("close", (code, signal) => {
        this.#exitReason = signal === null ? `exit code ${code}` : `signal ${signal}`;
        finish();
      });
      this.#child.once("error", (err: NodeJS.ErrnoException) => {
        // "error" without a pid means the spawn itself failed and no "close" may follow.
        if (this.#child.pid === undefined) {
          this.#spawnError = err;
          finish();
        }
      });
    });
    this.ready = this.#waitReady();
    // A caller that never awaits `ready` (stop during start) must not see an unhandled rejection.
    this.ready.catch(() => {});
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get hasExited(): boolean {
    return this.#exitedFlag;
  }

  async terminate(signal: "SIGTERM" | "SIGKILL", graceMs: number): Promise<void> {
    if (this.#exitedFlag) return;
    this.#child.kill(signal);
    const graceful = signal === "SIGTERM" ? await settledWithin(this.exited, graceMs) : false;
    if (graceful || this.#exitedFlag) return;
    this.#child.kill("SIGKILL");
    if (!(await settledWithin(this.exited, KILL_BOUND_MS))) {
      throw new NatsTestingError(
        "STOP_TIMEOUT",
        `nats-server pid ${this.pid} did not exit after SIGKILL`,
      );
    }
  }

  async #waitReady(): Promise<ReportedPorts> {
    const { startTimeoutMs, portsDir } = this.#spec;
    const deadline = Date.now() + startTimeoutMs;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#onChange = undefined;
        reject(
          this.#failure("START_TIMEOUT", `did not log "${READY_LINE}" within ${startTimeoutMs} ms`),
        );
      }, startTimeoutMs);
      this.#onChange = () => {
        if (this.#sawReady || this.#exitedFlag) {
          clearTimeout(timer);
          this.#onChange = undefined;
          if (this.#sawReady && !this.#exitedFlag) resolve();
          else reject(this.#exitFailure());
        }
      };
      this.#onChange();
    });
    const pid = this.pid as number;
    let ports: ReportedPorts | undefined;
    const reported = await waitUntil(
      async () => {
        if (this.#exitedFlag) return true;
        ports = await readPortsFile(portsDir, pid);
        return ports !== undefined;
      },
      { timeoutMs: Math.max(0, deadline - Date.now()) },
    );
    if (this.#exitedFlag) throw this.#exitFailure();
    if (!reported || ports === undefined) {
      throw this.#failure("START_TIMEOUT", `wrote no ports file into ${portsDir} in time`);
    }
    const client = ports.client;
    const reachable = await waitUntil(
      async () => this.#exitedFlag || (await canConnect("127.0.0.1", client, 1_000)),
      { timeoutMs: Math.max(0, deadline - Date.now()) },
    );
    if (this.#exitedFlag) throw this.#exitFailure();
    if (!reachable) {
      throw this.#failure("START_TIMEOUT", `accepted no TCP connection on port ${client} in time`);
    }
    // Ready: from here on a forgotten server must not keep the test process alive; the reaper
    // still kills it at exit.
    this.#child.unref();
    (this.#child.stderr as { unref?: () => void } | null)?.unref?.();
    return ports;
  }

  #onStderr(chunk: string): void {
    const lines = (this.#partial + chunk).split("\n");
    this.#partial = lines.pop() ?? "";
    for (const line of lines) {
      if (!this.#sawReady && line.includes(READY_LINE)) this.#sawReady = true;
      this.#tail.push(line);
      if (this.#tail.length > TAIL_LINES) this.#tail.shift();
    }
    if (this.#sawReady) this.#onChange?.();
  }

  #exitFailure(): NatsTestingError {
    const err = this.#spawnError;
    if (err !== undefined && (err.code === "ENOENT" || err.code === "EACCES")) {
      return new NatsTestingError(
        "NATS_SERVER_NOT_FOUND",
        `Cannot run nats-server "${this.#spec.binary}" (${err.code}). ${INSTALL_HINT}`,
        { cause: err },
      );
    }
    if (err !== undefined) {
      return new NatsTestingError(
        "START_FAILED",
        `Cannot spawn "${this.#spec.binary}": ${err.message}`,
        {
          cause: err,
        },
      );
    }
    const portInUse = this.#tail.some((line) => line.includes(PORT_IN_USE_LINE));
    return this.#failure(
      portInUse ? "PORT_IN_USE" : "START_FAILED",
      `exited during startup (${this.#exitReason})`,
    );
  }

  #failure(code: "START_FAILED" | "PORT_IN_USE" | "START_TIMEOUT", what: string): NatsTestingError {
    const tail = [...this.#tail, this.#partial].filter((l) => l !== "").join("\n");
    const command = [this.#spec.binary, ...this.#spec.args].join(" ");
    return new NatsTestingError(
      code,
      `nats-server ${what}.\ncommand: ${command}\nlast log lines:\n${tail || "(none)"}`,
    );
  }
}
