import { startContainerServer } from "./container-server.js";
import { requireDocker, useContainer } from "./docker.js";
import { type NatsServerOptions, resolveNatsServerOptions } from "./options.js";
import { startProcessServer } from "./process-server.js";

/** A running nats-server owned by a test. */
export interface NatsServer {
  /** Client URL, e.g. `nats://127.0.0.1:40123`; the same after `restart()`. */
  readonly url: string;
  /** Client port; the same after `restart()`. */
  readonly port: number;
  /** HTTP monitoring port (`/varz`, `/jsz`, `/healthz`); the same after `restart()`. */
  readonly monitorPort: number;
  /** The JetStream store directory on this machine; kept by `stop()`, `kill()` and `restart()`. */
  readonly storeDir: string;
  /** The server's process id while it runs as a local process; undefined otherwise. */
  readonly pid: number | undefined;
  /** Whether the server is currently running. */
  readonly running: boolean;
  /**
   * Graceful stop: SIGTERM, then SIGKILL if it has not exited after `stopTimeoutMs`. Keeps
   * the store so `restart()` can follow. Idempotent: returns the same promise until the
   * next `restart()`.
   */
  stop(): Promise<void>;
  /** Crash: SIGKILL, then wait for the exit. Keeps the store. */
  kill(): Promise<void>;
  /**
   * Stops the server if it runs, then starts it again on the same ports with the same store,
   * so JetStream data survives. Concurrent calls share one restart.
   */
  restart(): Promise<void>;
  /** Final stop: stops the server and removes its temporary directories. Idempotent. */
  dispose(): Promise<void>;
  /** Same as {@link NatsServer.dispose}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a nats-server for a test: a local `nats-server` process with its own ports and a fresh
 * JetStream store directory, or, when asked (see {@link NatsServerOptions.runtime}), a
 * Testcontainers container with the same lifecycle. Resolves once the server accepts clients.
 *
 * @example
 * ```ts
 * await using server = await startNatsServer();
 * const nc = await connect({ servers: server.url });
 * ```
 */
export async function startNatsServer(options?: NatsServerOptions): Promise<NatsServer> {
  const resolved = resolveNatsServerOptions(options);
  if (useContainer(resolved)) {
    await requireDocker();
    return startContainerServer(resolved);
  }
  return startProcessServer(resolved);
}
