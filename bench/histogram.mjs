// `npm run bench -- histogram`: what recording a call's duration in the latency histogram costs
// (the agent does it once per call, in EndpointStats.record). Times a loop that sums durations
// with and without LatencyHistogram.recordMs, in interleaved rounds over durations spread from
// 20 µs to 200 ms, and prints the median CPU ns per call of each and their difference. CPU only.
import { LatencyHistogram } from "@natsmesh/protocol/internal";
import { parseArgs, table } from "./lib.mjs";

const SPREAD = 4096;

function durations() {
  const out = new Float64Array(SPREAD);
  // Deterministic, log-uniform from 0.02 ms to 200 ms.
  for (let i = 0; i < SPREAD; i++) out[i] = 0.02 * 10_000 ** (((i * 2654435761) % SPREAD) / SPREAD);
  return out;
}

// Two loops, not one with a branch: each stays monomorphic, as the agent's call site is.
function sumOnly(iterations, ms) {
  let sum = 0;
  const start = process.cpuUsage();
  for (let i = 0; i < iterations; i++) sum += ms[i & (SPREAD - 1)];
  return done(start, iterations, sum);
}

function sumAndRecord(iterations, ms, histogram) {
  let sum = 0;
  const start = process.cpuUsage();
  for (let i = 0; i < iterations; i++) {
    const d = ms[i & (SPREAD - 1)];
    sum += d;
    histogram.recordMs(d);
  }
  return done(start, iterations, sum);
}

function done(start, iterations, sum) {
  // CPU time, not wall time: on a shared machine the wall clock also counts other processes.
  const { user, system } = process.cpuUsage(start);
  const ns = ((user + system) * 1000) / iterations;
  if (!(sum > 0)) throw new Error("nothing summed");
  return ns;
}

const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run(args) {
  const opts = parseArgs(args, { iterations: 5_000_000, rounds: 9, json: false });
  const ms = durations();
  const histogram = new LatencyHistogram();
  const without = [];
  const withHistogram = [];
  for (let r = 0; r < opts.rounds; r++) {
    without.push(sumOnly(opts.iterations, ms));
    withHistogram.push(sumAndRecord(opts.iterations, ms, histogram));
  }
  const recorded = histogram.counts.reduce((a, b) => a + b, 0);
  if (recorded !== opts.iterations * opts.rounds) throw new Error("calls went unrecorded");
  const [a, b] = [med(without), med(withHistogram)];
  const row = {
    "loop ns/call": a.toFixed(2),
    "with histogram ns/call": b.toFixed(2),
    "histogram ns/call": (b - a).toFixed(2),
    iterations: opts.iterations,
    rounds: opts.rounds,
  };
  if (opts.json) console.log(JSON.stringify(row));
  else table([row]);
}
