// The answering side of `npm run bench -- request`, started in the benchmark's own process or in
// a child (bench/responder.mjs): a plain nats.js echo for the two nats.js baselines, a natsmesh
// agent, the same agent with natsmesh's own metrics on (its Prometheus endpoint on a free loopback
// port), the same agent read by a user's OpenTelemetry SDK (a MeterProvider registered globally
// whose periodic reader has natsmeshMetricProducer() and exports every second), a natsmesh agent that checks tokens (when given a key set), and a Moleculer
// service broker (when given a namespace). Every one echoes its payload.
import { connect } from "@nats-io/transport-node";
import { natsmeshMetricProducer, startAgent } from "@natsmesh/agent";
import { connectionOptions, logLevelFromEnv } from "@natsmesh/protocol/internal";
import { metrics } from "@opentelemetry/api";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import Moleculer from "moleculer";
import { Packr } from "msgpackr";
import pino from "pino";

let userProvider;

/**
 * A user's OpenTelemetry metrics setup, once per process: a global MeterProvider whose reader
 * collects natsmesh's metrics (every agent and mesh of the process) each second and hands them
 * to an exporter that drops them, so collecting is paid for and nothing else.
 */
export function userOtel() {
  if (userProvider !== undefined) return userProvider;
  const exporter = {
    exports: 0,
    export(_metrics, done) {
      this.exports++;
      done({ code: 0 });
    },
    async forceFlush() {},
    async shutdown() {},
  };
  const reader = new PeriodicExportingMetricReader({
    exporter,
    exportIntervalMillis: 1000,
    metricProducers: [natsmeshMetricProducer()],
  });
  userProvider = new MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(userProvider);
  return userProvider;
}

/** Stops {@link userOtel}'s provider, if this process started one. */
export async function stopUserOtel() {
  const provider = userProvider;
  userProvider = undefined;
  metrics.disable();
  await provider?.shutdown();
}

/**
 * The agents' logger: natsmesh's default (pino at LOG_LEVEL) but on stderr, so that what they
 * log (presence warnings: the benchmark's nats-server runs without JetStream) never mixes with
 * the results on stdout (`--json`).
 */
function benchLogger() {
  return pino({ level: logLevelFromEnv() }, pino.destination(2));
}

/** nats.js connection options of every benchmark connection (the flush threshold, if set). */
export function natsOptions(url, pendingLimit) {
  // `pendingLimit` is a hidden nats.js option: buffered bytes that make publish() write inline.
  return pendingLimit > 0 ? { servers: url, pendingLimit } : { servers: url };
}

/**
 * Connection options of the natsmesh clients and agents: natsmesh's own (`connectionOptions()`,
 * which raises nats.js' flush threshold, as on every connection natsmesh opens itself), or the
 * forced threshold when `--pending-limit` is given.
 */
export function meshNatsOptions(url, pendingLimit) {
  const own = connectionOptions(url, "natsmesh-bench");
  return pendingLimit > 0 ? { ...own, pendingLimit } : own;
}

/** Moleculer's broker options, as its users run it over NATS: JSON, its NATS transporter. */
export function moleculerOptions(url, namespace, nodeID, pendingLimit) {
  const options = { url };
  if (pendingLimit > 0) options.pendingLimit = pendingLimit;
  return {
    namespace,
    nodeID,
    transporter: { type: "NATS", options },
    serializer: "JSON",
    logger: false,
  };
}

/**
 * Starts the responders. `prefix` is the natsmesh prefix (the plain echo listens on
 * `<prefix>.plain.echo`); `jwks` enables the token-checking agent `benchauth`; `namespace`
 * enables the Moleculer service `bench.echo`; `otel` registers {@link userOtel} (only runs with
 * the `mesh-otel` scenario do: the others measure natsmesh with no OpenTelemetry SDK at all).
 */
export async function startResponders({
  url,
  prefix,
  jwks,
  namespace,
  pendingLimit = 0,
  otel = false,
}) {
  const packr = new Packr({ useRecords: false });
  const nc = await connect(natsOptions(url, pendingLimit));
  nc.subscribe(`${prefix}.plain.echo`, {
    callback: (_err, msg) => msg.respond(packr.pack(packr.unpack(msg.data))),
  });
  const echo = { echo: (payload) => payload };
  const logger = benchLogger();
  const meshNc = await connect(meshNatsOptions(url, pendingLimit));
  const agent = await startAgent({
    connection: meshNc,
    prefix,
    service: "bench",
    concurrency: 4096,
    logger,
    methods: echo,
  });
  const metered = await startAgent({
    connection: meshNc,
    prefix,
    service: "benchmetrics",
    concurrency: 4096,
    logger,
    metrics: { port: 0 },
    methods: echo,
  });
  if (otel) userOtel();
  const otelAgent = await startAgent({
    connection: meshNc,
    prefix,
    service: "benchotel",
    concurrency: 4096,
    logger,
    methods: echo,
  });
  const authed =
    jwks === undefined
      ? undefined
      : await startAgent({
          connection: meshNc,
          prefix,
          service: "benchauth",
          concurrency: 4096,
          logger,
          auth: { jwks },
          methods: echo,
        });
  let broker;
  if (namespace !== undefined) {
    broker = new Moleculer.ServiceBroker(
      moleculerOptions(url, namespace, `svc-${process.pid}`, pendingLimit),
    );
    broker.createService({ name: "bench", actions: { echo: (ctx) => ctx.params } });
    await broker.start();
  }
  await nc.flush();
  await meshNc.flush();
  return {
    async stop() {
      await broker?.stop();
      await authed?.stop();
      await metered.stop();
      await otelAgent.stop();
      await stopUserOtel();
      await agent.stop();
      await meshNc.close();
      await nc.close();
    },
  };
}
