import type { NatsConnection } from "@nats-io/nats-core";

/** What {@link followConnection} reports. */
export interface ConnectionEvents {
  /** The connection to `server` was lost; nats.js reconnects. */
  disconnect?(server: string): void;
  /** Connected again, to `server`. */
  reconnect?(server: string): void;
}

/** A running follower of a connection's status. */
export interface ConnectionFollower {
  /** Settles when the follower ends: `stop()`, or the connection closed. Never rejects. */
  readonly closed: Promise<void>;
  /** Ends following; needed on a shared connection, which outlives what follows it. */
  stop(): void;
}

/** Reports a connection's disconnects and reconnects until stopped or closed. */
export function followConnection(nc: NatsConnection, on: ConnectionEvents): ConnectionFollower {
  const status = nc.status();
  const closed = (async () => {
    try {
      for await (const s of status) {
        if (s.type === "disconnect") on.disconnect?.(s.server);
        else if (s.type === "reconnect") on.reconnect?.(s.server);
      }
    } catch {
      // The status stream ends with the connection; nothing is left to report.
    }
  })();
  // nats.js' status iterator has stop(), but its declared type is a plain AsyncIterable.
  return { closed, stop: () => (status as { stop?: () => void }).stop?.() };
}
