import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  closeServer,
  listen,
  type MetricSet,
  readingProducer,
  withTimeout,
} from "@natsmesh/protocol/internal";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import type { Logger } from "pino";

/** Where the Prometheus endpoint listens. */
export interface MetricsEndpointOptions {
  port: number;
  host: string;
}

/** What the endpoint's `target_info` says about the agent. */
export interface MetricsIdentity {
  service: string;
  version: string;
  id: string;
}

const CLOSE_TIMEOUT_MS = 2000;

/**
 * The agent's optional Prometheus endpoint: `GET /metrics` in the Prometheus text format. It
 * shows this agent's {@link MetricSet}, handed at each scrape to OpenTelemetry's Prometheus
 * exporter (on a MeterProvider of its own, for `target_info`), so the names on this page are
 * those of docs/observability.md with dots as underscores.
 */
export class MetricsEndpoint {
  readonly #server: Server;
  readonly #provider: MeterProvider;
  #closing: Promise<void> | undefined;

  private constructor(server: Server, provider: MeterProvider) {
    this.#server = server;
    this.#provider = provider;
  }

  /** Starts listening; rejects when the port cannot be bound. */
  static async listen(
    options: MetricsEndpointOptions,
    metrics: MetricSet,
    identity: MetricsIdentity,
    log: Logger,
  ): Promise<MetricsEndpoint> {
    const exporter = new PrometheusExporter({
      preventServerStart: true,
      withoutScopeInfo: true,
      metricProducers: [readingProducer(() => [metrics.read()])],
    });
    const provider = new MeterProvider({
      resource: resourceFromAttributes({
        "service.name": identity.service,
        "service.version": identity.version,
        "service.instance.id": identity.id,
      }),
      readers: [exporter],
    });
    const server = createServer((req, res) => serve(exporter, req, res));
    try {
      await listen(server, options.port, options.host);
    } catch (err) {
      await provider.shutdown();
      throw err;
    }
    server.on("error", (err) => log.error({ err }, "metrics endpoint error"));
    const endpoint = new MetricsEndpoint(server, provider);
    log.info({ host: options.host, port: endpoint.port }, "metrics endpoint listening");
    return endpoint;
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
    await withTimeout(
      closeServer(this.#server),
      CLOSE_TIMEOUT_MS,
      "closing the metrics endpoint",
    ).catch(() => undefined);
    await this.#provider.shutdown();
  }
}

function serve(exporter: PrometheusExporter, req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? "/").split("?")[0];
  if (path !== "/metrics") {
    res
      .writeHead(404, { "Content-Type": "text/plain; charset=utf-8" })
      .end("not found: try /metrics\n");
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { Allow: "GET, HEAD" }).end();
    return;
  }
  exporter.getMetricsRequestHandler(req, res);
}
