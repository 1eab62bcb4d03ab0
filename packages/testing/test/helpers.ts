import type { NatsConnection } from "@nats-io/transport-node";

/** Whether a process with this id exists (signal 0 only checks). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw err;
  }
}

/** Resolves on the connection's next "reconnect" status; rejects after `timeoutMs`. */
export function nextReconnect(nc: NatsConnection, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no reconnect within ${timeoutMs} ms`)),
      timeoutMs,
    );
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === "reconnect") {
          clearTimeout(timer);
          resolve();
          return;
        }
      }
    })();
  });
}

/** Retries `fn` until it succeeds or `timeoutMs` has passed, then rethrows its last error. */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
