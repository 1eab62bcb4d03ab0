import { NatsTestingError } from "./errors.js";

/** How a run of a server ends: SIGTERM with a bounded grace period, or SIGKILL at once. */
export type HaltMode = "graceful" | "kill";

/**
 * The lifecycle every test server shares, whatever runs it (a local process, a container):
 * `stop()` is idempotent until the next `restart()`, `kill()` crashes the current run,
 * `restart()` is refused after `dispose()` and shared by concurrent callers, `dispose()` is
 * idempotent and waits for a restart in progress. A halt that arrives while a run is starting
 * takes effect once the start has finished or failed, so no run is ever left behind.
 * A runtime only says how to start one run, end it, and remove its files.
 */
export abstract class ServerLifecycle {
  #launching: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #restarting: Promise<void> | undefined;
  #disposing: Promise<void> | undefined;

  /** Starts one run; resolves once it accepts clients. */
  protected abstract launch(): Promise<void>;
  /** Ends the current run, if there is one, and resolves once it has ended. */
  protected abstract halt(mode: HaltMode): Promise<void>;
  /** Removes the server's temporary files; called once, after the last halt. */
  protected abstract release(): Promise<void>;

  /** The first run. On failure the caller disposes of the server. */
  start(): Promise<void> {
    this.#launching = this.launch();
    return this.#launching;
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#halt("graceful");
    return this.#stopping;
  }

  kill(): Promise<void> {
    return this.#halt("kill");
  }

  restart(): Promise<void> {
    if (this.#disposing !== undefined) {
      return Promise.reject(new NatsTestingError("DISPOSED", "restart() after dispose()"));
    }
    this.#restarting ??= (async () => {
      try {
        await this.stop();
        this.#stopping = undefined;
        await this.start();
      } finally {
        this.#restarting = undefined;
      }
    })();
    return this.#restarting;
  }

  dispose(): Promise<void> {
    this.#disposing ??= (async () => {
      await this.#restarting?.catch(() => {});
      try {
        await this.stop();
      } finally {
        await this.release();
      }
    })();
    return this.#disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  async #halt(mode: HaltMode): Promise<void> {
    await this.#launching?.catch(() => {});
    await this.halt(mode);
  }
}
