import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type Dashboard, dashboardUrl } from "@natsmesh/dashboard";
import type { InstanceRecord } from "@natsmesh/protocol";
import { closeServer, listen, withTimeout } from "@natsmesh/protocol/internal";
import type { Logger } from "pino";

/** What the HTTP endpoint reads from the registry on each request. */
export interface HttpApiSource {
  connected(): boolean;
  isLeader(): boolean;
  services(): Record<string, InstanceRecord[]>;
  /** Answers `GET /metrics` itself (the Prometheus exporter writes the response). */
  metrics(req: IncomingMessage, res: ServerResponse): void;
}

interface Reply {
  status: number;
  type: string;
  body: string;
}

/** Answered by the Prometheus exporter, which writes its own response. */
const METRICS_PATH = "/metrics";
const JSON_TYPE = "application/json; charset=utf-8";
const CLOSE_TIMEOUT_MS = 2000;

function json(status: number, value: unknown): Reply {
  return { status, type: JSON_TYPE, body: JSON.stringify(value) };
}

const ROUTES = new Map<string, (source: HttpApiSource) => Reply>([
  [
    "/healthz",
    (s) =>
      s.connected()
        ? json(200, { status: "ok", leader: s.isLeader() })
        : json(503, { status: "disconnected", leader: false }),
  ],
  ["/v1/services", (s) => json(200, { services: s.services() })],
]);

/**
 * The registry's HTTP endpoint (node:http): `GET /healthz`, `GET /v1/services`,
 * `GET /metrics`, and the dashboard's paths when it has one. Read-only and served from memory,
 * so it stays cheap to scrape.
 */
export class HttpApi {
  readonly #server: Server;
  readonly #dashboard: Dashboard | undefined;
  readonly #log: Logger;
  #closing: Promise<void> | undefined;

  private constructor(server: Server, dashboard: Dashboard | undefined, log: Logger) {
    this.#server = server;
    this.#dashboard = dashboard;
    this.#log = log;
  }

  /** Starts listening; rejects when the port cannot be bound. */
  static async listen(
    host: string,
    port: number,
    source: HttpApiSource,
    dashboard: Dashboard | undefined,
    log: Logger,
  ): Promise<HttpApi> {
    const server = createServer((req, res) => {
      if (dashboard?.handle(req, res) !== true) respond(source, req, res, log);
    });
    await listen(server, port, host);
    server.on("error", (err) => log.error({ err }, "http server error"));
    const api = new HttpApi(server, dashboard, log);
    const page = dashboard === undefined ? undefined : dashboardUrl(host, api.port);
    log.info({ host, port: api.port, dashboard: page }, "http endpoint listening");
    return api;
  }

  /** The bound port (the real one when 0 was asked for). */
  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Stops listening and closes open connections. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await this.#dashboard?.close();
    await withTimeout(
      closeServer(this.#server),
      CLOSE_TIMEOUT_MS,
      "closing the http endpoint",
    ).catch((err) => this.#log.warn({ err }, "http endpoint did not close in time"));
  }
}

function respond(
  source: HttpApiSource,
  req: IncomingMessage,
  res: ServerResponse,
  log: Logger,
): void {
  let reply: Reply;
  const path = (req.url ?? "/").split("?")[0]!;
  const route = ROUTES.get(path);
  if (route === undefined && path !== METRICS_PATH) {
    reply = json(404, { error: "not found" });
  } else if (req.method !== "GET" && req.method !== "HEAD") {
    reply = json(405, { error: "method not allowed" });
    res.setHeader("Allow", "GET, HEAD");
  } else if (route === undefined) {
    source.metrics(req, res);
    return;
  } else {
    try {
      reply = route(source);
    } catch (err) {
      log.error({ err, path }, "http request failed");
      reply = json(500, { error: "internal error" });
    }
  }
  res.writeHead(reply.status, {
    "Content-Type": reply.type,
    "Content-Length": Buffer.byteLength(reply.body),
    "Cache-Control": "no-store",
  });
  res.end(req.method === "HEAD" ? undefined : reply.body);
}
