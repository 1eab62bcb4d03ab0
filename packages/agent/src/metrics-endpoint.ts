import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { CallHistograms, DURATION_BUCKETS_S, withTimeout } from "@natsmesh/protocol/internal";
import { type HrTime, type Meter, ValueType } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { emptyResource, resourceFromAttributes } from "@opentelemetry/resources";
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  MeterProvider,
  type MetricProducer,
} from "@opentelemetry/sdk-metrics";
import type { Logger } from "pino";
import { AGENT_METER, SERVER_DURATION } from "./server-metrics.js";

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
 * The agent's optional Prometheus endpoint: `GET /metrics` in the Prometheus text format. Its
 * numbers come from a MeterProvider of its own, which the agent's instruments record into next
 * to the user's; OpenTelemetry's Prometheus exporter renders them, so the names on this page are
 * those of docs/observability.md with dots as underscores.
 */
export class MetricsEndpoint {
  readonly #server: Server;
  readonly #provider: MeterProvider;
  /** The call durations this endpoint shows, recorded by the agent (see `ServerMetrics`). */
  readonly histograms: CallHistograms;
  #closing: Promise<void> | undefined;

  private constructor(server: Server, provider: MeterProvider, histograms: CallHistograms) {
    this.#server = server;
    this.#provider = provider;
    this.histograms = histograms;
  }

  /** Starts listening; rejects when the port cannot be bound. */
  static async listen(
    options: MetricsEndpointOptions,
    identity: MetricsIdentity,
    log: Logger,
  ): Promise<MetricsEndpoint> {
    const histograms = new CallHistograms();
    const exporter = new PrometheusExporter({
      preventServerStart: true,
      withoutScopeInfo: true,
      metricProducers: [durationProducer(histograms)],
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
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(options.port, options.host, () => {
          server.off("error", reject);
          resolve();
        });
      });
    } catch (err) {
      await provider.shutdown();
      throw err;
    }
    server.on("error", (err) => log.error({ err }, "metrics endpoint error"));
    const endpoint = new MetricsEndpoint(server, provider, histograms);
    log.info({ host: options.host, port: endpoint.port }, "metrics endpoint listening");
    return endpoint;
  }

  /** The meter whose instruments this endpoint shows. */
  get meter(): Meter {
    return this.#provider.getMeter(AGENT_METER);
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
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    // A scraper's keep-alive connection would otherwise hold close() open.
    this.#server.closeAllConnections();
    await withTimeout(closed, CLOSE_TIMEOUT_MS, "closing the metrics endpoint").catch(
      () => undefined,
    );
    await this.#provider.shutdown();
  }
}

function hrTime(ms: number): HrTime {
  return [Math.floor(ms / 1000), (ms % 1000) * 1e6];
}

/**
 * `rpc.server.call.duration` from the agent's own histograms, handed to the exporter at each
 * scrape as an OpenTelemetry SDK histogram would be: the agent records a call with a few
 * additions instead of through the SDK's instrument, which costs a microsecond or more per call.
 */
function durationProducer(histograms: CallHistograms): MetricProducer {
  const boundaries = [...DURATION_BUCKETS_S];
  return {
    collect: async (): Promise<CollectionResult> => {
      const startTime = hrTime(histograms.startedAt);
      const endTime = hrTime(Date.now());
      const dataPoints = Array.from(histograms.entries(), ([attributes, s]) => ({
        attributes,
        startTime,
        endTime,
        value: {
          buckets: { boundaries, counts: Array.from(s.counts) },
          sum: s.sum,
          count: s.count,
          min: s.min,
          max: s.max,
        },
      }));
      return {
        resourceMetrics: {
          resource: emptyResource(),
          scopeMetrics: [
            {
              scope: { name: AGENT_METER },
              metrics: [
                {
                  descriptor: { ...SERVER_DURATION, valueType: ValueType.DOUBLE },
                  aggregationTemporality: AggregationTemporality.CUMULATIVE,
                  dataPointType: DataPointType.HISTOGRAM,
                  dataPoints,
                },
              ],
            },
          ],
        },
        errors: [],
      };
    },
  };
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
