// The answering side of `npm run bench -- request`, started in the benchmark's own process or in
// a child (bench/responder.mjs): a plain nats.js echo for the two nats.js baselines, a natsmesh
// agent, the same agent with natsmesh's own metrics on (its Prometheus endpoint on a free loopback
// port, so every call is recorded), the same agent recording into an OpenTelemetry SDK
// MeterProvider, a natsmesh agent that checks tokens (when given a key set), and a Moleculer
// service broker (when given a namespace). Every one echoes its payload.
import { connect } from "@nats-io/transport-node";
import { startAgent } from "@natsmesh/agent";
import { connectionOptions } from "@natsmesh/protocol/internal";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import Moleculer from "moleculer";
import { Packr } from "msgpackr";

/** A metric reader that is never asked to collect: recording costs what it costs with any. */
export class IdleReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
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
 * enables the Moleculer service `bench.echo`.
 */
export async function startResponders({ url, prefix, jwks, namespace, pendingLimit = 0 }) {
  const packr = new Packr({ useRecords: false });
  const nc = await connect(natsOptions(url, pendingLimit));
  nc.subscribe(`${prefix}.plain.echo`, {
    callback: (_err, msg) => msg.respond(packr.pack(packr.unpack(msg.data))),
  });
  const echo = { echo: (payload) => payload };
  const meshNc = await connect(meshNatsOptions(url, pendingLimit));
  const agent = await startAgent({
    connection: meshNc,
    prefix,
    service: "bench",
    concurrency: 4096,
    methods: echo,
  });
  const metered = await startAgent({
    connection: meshNc,
    prefix,
    service: "benchmetrics",
    concurrency: 4096,
    metrics: { port: 0 },
    methods: echo,
  });
  const meters = new MeterProvider({ readers: [new IdleReader()] });
  const otel = await startAgent({
    connection: meshNc,
    prefix,
    service: "benchotel",
    concurrency: 4096,
    meterProvider: meters,
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
      await otel.stop();
      await meters.shutdown();
      await agent.stop();
      await meshNc.close();
      await nc.close();
    },
  };
}
