import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/nats-core";

let n = 0;

/** A prefix no other test (or test file running beside this one) uses. */
export function uniquePrefix(tag: string): string {
  return `reg${process.pid}${tag}${n++}`;
}

/** The bucket's last stream sequence: it moves on every put and delete, by anyone. */
export async function lastSeq(kv: KV): Promise<number> {
  return (await kv.status()).streamInfo.state.last_seq;
}

/** A KV watch recording every change with the monotonic time it arrived. */
export interface Recorder {
  readonly events: { key: string; op: string; at: number; value: string }[];
  stop(): void;
}

/** Starts recording changes of `kv` (updates only, not what it holds already). */
export async function record(kv: KV): Promise<Recorder> {
  const events: Recorder["events"] = [];
  const watch: QueuedIterator<KvWatchEntry> = await kv.watch({ include: "updates" });
  void (async () => {
    for await (const e of watch) {
      events.push({ key: e.key, op: e.operation, at: performance.now(), value: e.string() });
    }
  })();
  return { events, stop: () => watch.stop() };
}

/** A fixture running in its own node process. */
export interface Fixture<T> {
  readonly child: ChildProcess;
  /** The JSON line the fixture printed once started. */
  readonly info: T;
  /** SIGKILL, then the exit. */
  kill(): Promise<void>;
}

/** Runs `test/fixtures/<name>.mjs` with `args` and waits (bounded) for its first line. */
export async function spawnFixture<T>(
  name: string,
  args: string[],
  timeoutMs = 15_000,
): Promise<Fixture<T>> {
  const script = fileURLToPath(new URL(`./fixtures/${name}.mjs`, import.meta.url));
  const child = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  };
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(
        () => reject(new Error(`${name} did not start: ${stderr}`)),
        timeoutMs,
      );
      child.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
        const nl = out.indexOf("\n");
        if (nl >= 0) {
          clearTimeout(timer);
          resolve(out.slice(0, nl));
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited with ${code}: ${stderr}`));
      });
    });
    return { child, info: JSON.parse(line) as T, kill };
  } catch (err) {
    await kill();
    throw err;
  }
}
