// Shared measurement helpers for the benchmarks: closed-loop load with bounded duration and
// latency percentiles from a bounded sample.

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
 * requests per second and latency percentiles in microseconds.
 */
export async function closedLoop(call, { inflight, durationMs, warmupMs }) {
  const warmEnd = performance.now() + warmupMs;
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (performance.now() < warmEnd) await call();
    }),
  );
  const samples = new Float64Array(MAX_SAMPLES);
  let n = 0;
  let count = 0;
  const start = performance.now();
  const end = start + durationMs;
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        await call();
        const dt = performance.now() - t0;
        count++;
        if (n < MAX_SAMPLES) samples[n++] = dt;
      }
    }),
  );
  const elapsed = performance.now() - start;
  const sorted = samples.subarray(0, n).sort();
  const pct = (p) => Math.round(sorted[Math.min(n - 1, Math.floor(p * n))] * 1000);
  return { rps: Math.round((count / elapsed) * 1000), p50: pct(0.5), p99: pct(0.99), count };
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
