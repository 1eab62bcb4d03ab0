// `npm run bench -- metrics-record`: what recording one call's duration costs at the single
// point where a call settles. natsmesh records into its own histograms (a MetricSet) whatever
// reads them (nothing, its Prometheus endpoint, or a user's OpenTelemetry SDK through
// natsmeshMetricProducer()); for reference, the two ways it recorded before: a histogram of
// @opentelemetry/api with no MeterProvider registered (a no-op), and one of an OpenTelemetry SDK
// MeterProvider (what a user's OpenTelemetry setup paid per call). Interleaved rounds of a loop
// over the same attribute sets and durations; prints the median CPU ns per call of each, less
// the bare loop's, and what one collection by natsmeshMetricProducer() costs. CPU only.
import {
  DurationHistogram,
  MethodAttributes,
  MetricSet,
  meshMetrics,
  natsmeshMetricProducer,
} from "@natsmesh/protocol/internal";
import { metrics } from "@opentelemetry/api";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { parseArgs, table } from "./lib.mjs";

const SPREAD = 4096;

class IdleReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

function inputs() {
  const seconds = new Float64Array(SPREAD);
  const methods = [new MethodAttributes("shop/buy"), new MethodAttributes("shop/list")];
  const attrs = [];
  for (let i = 0; i < SPREAD; i++) {
    // Log-uniform from 20 µs to 200 ms; one call in 64 fails.
    seconds[i] = 0.00002 * 10_000 ** (((i * 2654435761) % SPREAD) / SPREAD);
    const m = methods[i & 1];
    attrs.push(i % 64 === 0 ? m.failed("OVERLOADED") : m.ok);
  }
  return { seconds, attrs };
}

function timed(iterations, body) {
  const start = process.cpuUsage();
  const sum = body(iterations);
  const { user, system } = process.cpuUsage(start);
  if (!(sum > 0)) throw new Error("nothing summed");
  return ((user + system) * 1000) / iterations;
}

const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run(args) {
  const opts = parseArgs(args, { iterations: 2_000_000, rounds: 7, json: false });
  const { seconds, attrs } = inputs();
  const noop = metrics.getMeterProvider().getMeter("bench").createHistogram("d");
  const provider = new MeterProvider({ readers: [new IdleReader()] });
  const sdk = provider.getMeter("bench").createHistogram("d", { unit: "s" });
  const own = new DurationHistogram();
  // Separate functions, so each call site stays monomorphic, as the agent's is.
  const ways = {
    loop: (n) => {
      let sum = 0;
      for (let i = 0; i < n; i++)
        sum += seconds[i & (SPREAD - 1)] + (attrs[i & (SPREAD - 1)] ? 1 : 0);
      return sum;
    },
    "api, no provider": (n) => {
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const s = seconds[i & (SPREAD - 1)];
        sum += s;
        noop.record(s, attrs[i & (SPREAD - 1)]);
      }
      return sum;
    },
    "natsmesh's own histograms (every path now)": (n) => {
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const s = seconds[i & (SPREAD - 1)];
        sum += s;
        own.record(attrs[i & (SPREAD - 1)], s);
      }
      return sum;
    },
    "OpenTelemetry SDK (the former OTel path)": (n) => {
      let sum = 0;
      for (let i = 0; i < n; i++) {
        const s = seconds[i & (SPREAD - 1)];
        sum += s;
        sdk.record(s, attrs[i & (SPREAD - 1)]);
      }
      return sum;
    },
  };
  const results = Object.fromEntries(Object.keys(ways).map((k) => [k, []]));
  for (let r = 0; r < opts.rounds; r++) {
    for (const [name, body] of Object.entries(ways)) {
      // The SDK is two orders slower: fewer iterations keep a round short.
      const n = name.startsWith("OpenTelemetry SDK") ? opts.iterations / 10 : opts.iterations;
      results[name].push(timed(n, body));
    }
  }
  await provider.shutdown();
  const collectUs = await collectCost(attrs, seconds, opts.rounds);
  const base = med(results.loop);
  const rows = Object.keys(ways)
    .filter((k) => k !== "loop")
    .map((k) => ({ "records into": k, "ns/call": (med(results[k]) - base).toFixed(1) }));
  if (opts.json) console.log(JSON.stringify({ loopNs: base, rows, collectUs }, null, 2));
  else {
    console.log(`loop alone: ${base.toFixed(2)} ns/call (median of ${opts.rounds} rounds)`);
    table(rows);
    console.log(
      `one collection by natsmeshMetricProducer() of ${collectUs.series} series: ` +
        `${collectUs.median.toFixed(1)} µs CPU (median of ${collectUs.rounds})`,
    );
  }
}

/**
 * CPU µs of one `natsmeshMetricProducer().collect()` over a set holding what the loop recorded
 * (a few series), as a user's reader pays it once per export interval.
 */
async function collectCost(attrs, seconds, rounds) {
  const set = new MetricSet("bench");
  const h = set.histogram({ name: "d", description: "", unit: "s", kind: "histogram" });
  for (let i = 0; i < SPREAD; i++) h.record(attrs[i], seconds[i]);
  meshMetrics.add(set);
  const producer = natsmeshMetricProducer();
  await producer.collect(); // loads the OpenTelemetry SDK once
  const n = 200;
  const us = [];
  for (let r = 0; r < rounds; r++) {
    const start = process.cpuUsage();
    for (let i = 0; i < n; i++) await producer.collect();
    const { user, system } = process.cpuUsage(start);
    us.push((user + system) / n);
  }
  meshMetrics.retire(set);
  return { median: med(us), rounds, series: h.series.size };
}
