// Shared measurement helpers for the benchmarks: closed-loop load with bounded duration and
// latency percentiles from a bounded sample.
import { generateKeyPair, issueToken } from "@natsmesh/protocol";

/**
 * A fresh signing key pair and a caller token for `benchauth.echo`, valid for an hour: what the
 * auth scenarios' responders check and their callers carry.
 */
export async function benchAuth() {
  const keys = await generateKeyPair();
  const token = await issueToken({
    key: keys.privateJwk,
    sub: "bench",
    scope: "benchauth.echo",
    ttl: 3600,
  });
  return { keys, token };
}

/** Parses `--name value` and `--flag` arguments. */
export function parseArgs(args, defaults) {
  const out = { ...defaults };
  for (let i = 0; i < args.length; i++) {
    const key = args[i].replace(/^--/, "");
    if (!(key in defaults)) throw new TypeError(`unknown option --${key}`);
    if (typeof defaults[key] === "boolean") out[key] = true;
    else out[key] = typeof defaults[key] === "number" ? Number(args[++i]) : args[++i];
  }
  return out;
}

const MAX_SAMPLES = 200_000;

/**
 * Runs `call` from `inflight` concurrent loops for `durationMs` after `warmupMs`, and returns
 * requests per second and latency percentiles in microseconds. `sample()`, when given, is awaited
 * right before and right after the measured window (nothing is in flight then); the result
 * carries both values as `before` and `after`. A call that does not settle within `stallMs`
 * fails the run, so a lost reply cannot hang a benchmark.
 */
export async function closedLoop(
  call,
  { inflight, durationMs, warmupMs, sample, stallMs = 30_000 },
) {
  const warmEnd = performance.now() + warmupMs;
  await bounded(
    Promise.all(
      Array.from({ length: inflight }, async () => {
        while (performance.now() < warmEnd) await call();
      }),
    ),
    warmupMs + stallMs,
  );
  const before = await sample?.();
  const samples = new Float64Array(MAX_SAMPLES);
  let n = 0;
  let count = 0;
  const start = performance.now();
  const end = start + durationMs;
  await bounded(
    Promise.all(
      Array.from({ length: inflight }, async () => {
        while (performance.now() < end) {
          const t0 = performance.now();
          await call();
          const dt = performance.now() - t0;
          count++;
          if (n < MAX_SAMPLES) samples[n++] = dt;
        }
      }),
    ),
    durationMs + stallMs,
  );
  const elapsed = performance.now() - start;
  const after = await sample?.();
  const sorted = samples.subarray(0, n).sort();
  const pct = (p) => Math.round(sorted[Math.min(n - 1, Math.floor(p * n))] * 1000);
  return {
    rps: Math.round((count / elapsed) * 1000),
    p50: pct(0.5),
    p99: pct(0.99),
    count,
    elapsedMs: elapsed,
    before,
    after,
  };
}

/** Rejects when `promise` has not settled within `ms`. */
async function bounded(promise, ms) {
  let timer;
  const stall = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`a call did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, stall]);
  } finally {
    clearTimeout(timer);
  }
}

/** Prints rows as an aligned text table. */
export function table(rows) {
  const keys = Object.keys(rows[0]);
  const width = keys.map((k) => Math.max(k.length, ...rows.map((r) => String(r[k]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padStart(width[i])).join("  ");
  console.log(line(keys));
  for (const r of rows) console.log(line(keys.map((k) => r[k])));
}

/** The round with the median throughput (its latencies come with it). */
export function median(results) {
  const sorted = [...results].sort((a, b) => a.rps - b.rps);
  return sorted[Math.floor(sorted.length / 2)];
}

/** The median of a list of numbers (the lower middle one for an even count). */
export function medianOf(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}
