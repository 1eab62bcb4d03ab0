import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { checkInt, closeServer, listen, settledWithin } from "@natsmesh/protocol/internal";
import { createDashboard, type Dashboard } from "./dashboard.js";
import type { DashboardOptions } from "./options.js";

/** Options of {@link serveDashboard}: the dashboard's, plus where to listen. */
export interface DashboardServerOptions extends Omit<DashboardOptions, "listenHost"> {
  /** Port; 0 picks a free one (see `url`). @default 0 */
  port?: number;
  /**
   * Address to bind. Loopback by default: the page shows the mesh's topology and traffic.
   * @default "127.0.0.1"
   */
  host?: string;
}

/** A dashboard on its own HTTP port. */
export interface DashboardServer extends AsyncDisposable {
  readonly dashboard: Dashboard;
  /** The page's address, e.g. `http://127.0.0.1:8080/dashboard/`. */
  readonly url: string;
  readonly port: number;
  /** Closes the page's streams and the server. Idempotent. */
  close(): Promise<void>;
}

const CLOSE_TIMEOUT_MS = 2000;

/** The URL of the page on a server at `host:port`. */
export function dashboardUrl(host: string, port: number): string {
  const h = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  return `http://${h.includes(":") ? `[${h}]` : h}:${port}/dashboard/`;
}

/**
 * Serves a dashboard on its own node:http server: only GET and HEAD, only the dashboard's
 * paths. Resolves once listening; rejects when the port cannot be bound.
 */
export async function serveDashboard(options: DashboardServerOptions): Promise<DashboardServer> {
  const { port: portOption = 0, host = "127.0.0.1", ...rest } = options;
  const port = checkInt(portOption, "port", 0, 65_535);
  const dashboard = createDashboard({ ...rest, listenHost: host });
  const server = createServer((req, res) => {
    if (!dashboard.handle(req, res)) {
      res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" });
      res.end("not found\n");
    }
  });
  try {
    await listen(server, port, host);
  } catch (err) {
    await dashboard.close();
    throw err;
  }
  const bound = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= closeAll(server, dashboard);
    return closing;
  };
  return {
    dashboard,
    url: dashboardUrl(host, bound),
    port: bound,
    close,
    [Symbol.asyncDispose]: close,
  };
}

async function closeAll(server: Server, dashboard: Dashboard): Promise<void> {
  await dashboard.close();
  await settledWithin(closeServer(server), CLOSE_TIMEOUT_MS);
}
