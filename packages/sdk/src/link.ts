import type { NatsConnection } from "@nats-io/nats-core";
import { MeshError } from "@natsmesh/protocol";
import { type ConnectionFollower, followConnection } from "@natsmesh/protocol/internal";
import type { Logger } from "pino";

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
}

/**
 * Whether the connection can carry a request now. nats.js drops what is published while it is
 * disconnected, so a call waits here for the reconnect instead, within its own deadline.
 */
export class Link {
  #up = true;
  #closed = false;
  readonly #waiters = new Set<Waiter>();
  readonly #status: ConnectionFollower;

  constructor(nc: NatsConnection, log: Logger) {
    this.#status = followConnection(nc, {
      disconnect: (server) => {
        this.#up = false;
        log.warn({ server }, "disconnected from NATS; calls wait for the reconnect");
      },
      reconnect: (server) => {
        this.#up = true;
        log.info({ server }, "reconnected to NATS");
        for (const w of this.#waiters) {
          clearTimeout(w.timer);
          w.resolve();
        }
        this.#waiters.clear();
      },
    });
    void nc.closed().then(() => this.#close());
  }

  get up(): boolean {
    return this.#up;
  }

  #close(): void {
    this.#up = false;
    this.#closed = true;
    const err = new MeshError("UNAVAILABLE", "the NATS connection is closed");
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.#waiters.clear();
  }

  /** Stops following the connection's status (the mesh closed; the connection may live on). */
  stop(): void {
    this.#status.stop();
  }

  /** Resolves once connected; rejects `UNAVAILABLE` at `deadline`, or the signal's reason on abort. */
  waitUp(deadline: number, signal?: AbortSignal): Promise<void> {
    if (this.#up) return Promise.resolve();
    if (this.#closed)
      return Promise.reject(new MeshError("UNAVAILABLE", "the NATS connection is closed"));
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(waiter.timer);
        this.#waiters.delete(waiter);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        reject,
        timer: setTimeout(
          () => {
            this.#waiters.delete(waiter);
            signal?.removeEventListener("abort", onAbort);
            reject(
              new MeshError(
                "UNAVAILABLE",
                "not connected to NATS and no reconnect before the deadline",
              ),
            );
          },
          Math.max(0, deadline - Date.now()),
        ),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }
}
