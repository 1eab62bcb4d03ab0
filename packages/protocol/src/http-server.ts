import type { Server } from "node:http";

/** Starts `server` on `host:port`; rejects with the error of a listen that failed (EADDRINUSE, …). */
export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/**
 * Stops `server` taking connections and ends the open ones (a scraper's keep-alive, an event
 * stream), which would otherwise hold the close open; resolves once it closed. Unbounded: the
 * caller bounds it.
 */
export function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  return closed;
}
