import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { settledWithin, withTimeout } from "@natsmesh/protocol/internal";
import { failure } from "../errors.js";

/** What `natsmesh up` runs when it has to start NATS itself. */
export const NATS_SERVER = "nats-server";

/** Lines of the server's log kept to explain a failed start. */
const TAIL_LINES = 30;
/** How long the server may take to say it is ready. */
const START_TIMEOUT_MS = 15_000;
/** How long a SIGTERM may take before SIGKILL. */
const STOP_TIMEOUT_MS = 10_000;

// nats-server 2.x: "[INF] Listening for client connections on 127.0.0.1:4222", "[INF] Server is ready".
const LISTENING = /Listening for client connections on [^\s]*:(\d+)\s*$/;
const READY = /Server is ready/;

/** A `nats-server -js` started by `natsmesh up`. */
export interface NatsServerProcess {
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  /** Resolves when the process has exited, with how. */
  readonly exited: Promise<string>;
  /** SIGTERM, then SIGKILL after a bound; resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
}

/** Why a start failed because the program is not installed (so the caller can say how to get it). */
export class NatsServerMissing extends Error {
  constructor(cause: unknown) {
    super(`${NATS_SERVER} is not on the PATH`, { cause });
    this.name = "NatsServerMissing";
  }
}

/**
 * Starts `nats-server -js` on 127.0.0.1 at `port` (0: any free port, which it reports), its
 * JetStream store in `storeDir`, and waits until it is ready. It runs in a process group of its
 * own, so the Ctrl-C meant for `natsmesh up` does not stop it before the agents have drained
 * through it; `stop()` ends it, and so does this process's exit, however it comes.
 */
export async function startNatsServerProcess(o: {
  port: number;
  storeDir: string;
}): Promise<NatsServerProcess> {
  mkdirSync(o.storeDir, { recursive: true, mode: 0o700 });
  const child = spawn(
    NATS_SERVER,
    [
      ...["-js", "-sd", o.storeDir, "-a", "127.0.0.1"],
      ...["-p", o.port === 0 ? "-1" : String(o.port), "--server_name", "natsmesh-up"],
    ],
    { detached: true, stdio: ["ignore", "ignore", "pipe"] },
  );
  const killOnExit = () => child.kill("SIGKILL");
  // Not events.once: that would reject on the "error" of a failed spawn.
  const exited = new Promise<string>((resolve) => {
    child.once("close", (code, signal) => {
      process.off("exit", killOnExit);
      resolve(signal === null ? `exit code ${String(code)}` : `signal ${String(signal)}`);
    });
  });
  const spawned = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    child.once("spawn", () => resolve(undefined));
    child.once("error", resolve);
  });
  if (spawned !== undefined) {
    if (spawned.code === "ENOENT") throw new NatsServerMissing(spawned);
    throw failure(`could not run ${NATS_SERVER}: ${spawned.message}`, spawned);
  }
  process.on("exit", killOnExit);
  const tail: string[] = [];
  let port: number | undefined;
  // nats-server logs to stderr; read it all the time, or a chatty server would block on the pipe.
  const ready = new Promise<number>((resolve) => {
    createInterface({ input: child.stderr! }).on("line", (line) => {
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      const listening = LISTENING.exec(line);
      if (listening !== null) port = Number(listening[1]);
      if (READY.test(line) && port !== undefined) resolve(port);
    });
  });
  const outcome = await withTimeout(
    Promise.race([ready, exited.then((how) => new Error(`it exited (${how})`))]),
    START_TIMEOUT_MS,
    "waiting for it to be ready",
  ).catch((err: Error) => err);
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      if (!(await settledWithin(exited, STOP_TIMEOUT_MS))) {
        child.kill("SIGKILL");
        await exited;
      }
    })();
    return stopping;
  };
  if (outcome instanceof Error) {
    await stop();
    throw failure(
      `${NATS_SERVER} did not start: ${outcome.message}. Its last lines:\n${tail.join("\n")}`,
    );
  }
  return { pid: child.pid!, port: outcome, url: `nats://127.0.0.1:${outcome}`, exited, stop };
}
