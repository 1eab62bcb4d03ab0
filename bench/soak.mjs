// `npm run soak -- --minutes N`: a mesh under steady load for N minutes, with one agent process
// replaced (SIGKILL, then a new one) every --replace-every seconds. Reports calls, failures by
// code and when they happened relative to the kills, and the memory (RSS; heap for this process)
// of every long-lived process at the start and end of the run. Exits 1 when a call failed
// outside the window after a kill, or a call outlived its deadline.
//
// Processes: one nats-server (through @natsmesh/testing, random loopback port), one
// `natsmesh registry`, --agents agent processes (test/reliability/fixtures/agent.mjs), and the
// SDK in this process, sending --rate calls/s: half weighted, half queue; half idempotent.
import { connectMesh, MeshError } from "@natsmesh/sdk";
import { startNatsServer, uniquePrefix } from "@natsmesh/testing";
import {
  rssOf,
  startAgentProcess,
  startRegistryProcess,
} from "../test/reliability/lib/mesh-processes.mjs";
import { mixedCall, startLoad } from "../test/reliability/lib/paced-load.mjs";
import { parseArgs, table } from "./lib.mjs";

/** A failed call is expected only if it started at most this long after a SIGKILL. */
const KILL_WINDOW_MS = 250;
/** Allowance past a call's deadline for the SDK's shared 10 ms timer and a loaded machine. */
const LATE_MS = 250;
/** Most failures kept with their times; the rest are only counted. */
const MAX_FAILURES = 10_000;
const SAMPLE_MS = 5000;
const HEARTBEAT_MS = 1000;

const o = parseArgs(process.argv.slice(2), {
  minutes: 1,
  rate: 2000,
  agents: 3,
  "replace-every": 30,
  timeout: 2000,
  json: false,
});
if (!(o.minutes > 0 && o.minutes <= 24 * 60)) throw new TypeError("--minutes must be in (0, 1440]");
if (!(o.rate > 0 && o.rate <= 20_000)) throw new TypeError("--rate must be in (0, 20000]");
if (!(o.agents >= 2 && o.agents <= 16)) throw new TypeError("--agents must be 2–16");
if (!(o["replace-every"] >= 1)) throw new TypeError("--replace-every must be ≥ 1 (seconds)");

const durationMs = Math.round(o.minutes * 60_000);
const say = o.json ? () => undefined : (line) => console.log(line);
const server = await startNatsServer({ runtime: "process" });
const place = { servers: server.url, prefix: uniquePrefix("soak"), heartbeatMs: HEARTBEAT_MS };
const started = [];
let mesh;
let sampler;
try {
  const registry = await startRegistryProcess(place, { heartbeatTimeoutMs: 3 * HEARTBEAT_MS });
  started.push(registry);
  const agents = [];
  for (let i = 0; i < o.agents; i++) agents.push(await startAgentProcess(place));
  started.push(...agents);
  mesh = await connectMesh({ servers: server.url, prefix: place.prefix, timeoutMs: o.timeout });
  const end = Date.now() + 15_000;
  while (mesh.instances("svc").length < o.agents && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
  }
  if (mesh.instances("svc").length < o.agents) throw new Error("agents never became visible");

  const memory = () => {
    global.gc?.();
    const self = process.memoryUsage();
    return {
      sdkRss: self.rss,
      sdkHeap: self.heapUsed,
      registryRss: rssOf(registry.process.pid),
      natsRss: rssOf(server.pid),
    };
  };
  const samples = [{ at: 0, ...memory() }];
  const kills = [];
  const failures = [];
  const codes = {};
  let ok = 0;
  let failed = 0;
  let longest = 0;

  const begin = Date.now();
  const load = startLoad({
    rate: o.rate,
    durationMs,
    maxInflight: 4096,
    call: (n) => mixedCall(mesh, n),
    onOutcome: (c) => {
      longest = Math.max(longest, c.end - c.start);
      if (c.ok) {
        ok++;
        return;
      }
      failed++;
      const code = c.error instanceof MeshError ? c.error.code : "NOT_A_MESH_ERROR";
      codes[code] = (codes[code] ?? 0) + 1;
      if (failures.length < MAX_FAILURES) {
        failures.push({ n: c.n, start: c.start, end: c.end, code, idempotent: c.n % 2 === 0 });
      }
    },
  });
  sampler = setInterval(() => samples.push({ at: Date.now() - begin, ...memory() }), SAMPLE_MS);

  // Replace the oldest agent every --replace-every seconds, while the load runs.
  const everyMs = o["replace-every"] * 1000;
  for (let next = everyMs; next < durationMs - 1000; next += everyMs) {
    while (Date.now() - begin < next) await new Promise((r) => setTimeout(r, 50));
    const victim = agents.shift();
    kills.push(Date.now());
    await victim.kill();
    const fresh = await startAgentProcess(place);
    agents.push(fresh);
    started.push(fresh);
    say(`${((Date.now() - begin) / 1000).toFixed(0)} s: replaced ${victim.id} by ${fresh.id}`);
  }
  const summary = await load.done;
  clearInterval(sampler);
  samples.push({ at: Date.now() - begin, ...memory() });

  // A failure is explained when the call started within KILL_WINDOW_MS after a kill, or was
  // in flight when it happened (started before, within its deadline).
  const explained = (f) =>
    kills.some((k) => f.start <= k + KILL_WINDOW_MS && f.start >= k - o.timeout - LATE_MS);
  const unexplained = failures.filter((f) => !explained(f));
  const first = samples[1] ?? samples[0];
  const last = samples.at(-1);
  const growth = (field) => (last[field] ?? 0) - (first[field] ?? 0);
  const report = {
    minutes: o.minutes,
    rate: Math.round(summary.rate),
    calls: summary.started,
    ok,
    failed,
    codes,
    skipped: summary.skipped,
    failedIdempotent: failures.filter((f) => f.idempotent).length,
    unexplained: unexplained.slice(0, 20),
    unexplainedCount: unexplained.length,
    kills: kills.length,
    longestMs: longest,
    timeoutMs: o.timeout,
    memory: {
      first,
      last,
      growth: {
        sdkRss: growth("sdkRss"),
        sdkHeap: growth("sdkHeap"),
        registryRss: growth("registryRss"),
        natsRss: growth("natsRss"),
      },
      gc: typeof global.gc === "function",
    },
  };
  const passed =
    unexplained.length === 0 &&
    longest <= o.timeout + LATE_MS &&
    failed <= failures.length &&
    summary.settled === summary.started;
  if (o.json) {
    console.log(JSON.stringify({ ...report, passed }));
  } else {
    const mb = (bytes) => (bytes === undefined ? "-" : (bytes / 2 ** 20).toFixed(1));
    say(
      `\n${report.calls} calls in ${o.minutes} min at ${report.rate}/s: ${ok} ok, ${failed} failed ` +
        `${JSON.stringify(codes)} (${report.failedIdempotent} idempotent), ${kills.length} agents ` +
        `killed; ${unexplained.length} failures outside ${KILL_WINDOW_MS} ms after a kill; ` +
        `longest call ${longest} ms (timeout ${o.timeout} ms)`,
    );
    say(
      `memory (MiB) after ${(first.at / 1000).toFixed(0)} s and at the end` +
        `${report.memory.gc ? " (after a GC)" : " (run with --expose-gc for heap after a GC)"}:`,
    );
    table(
      [
        ["SDK (this process) RSS", "sdkRss"],
        ["SDK heap used", "sdkHeap"],
        ["registry RSS", "registryRss"],
        ["nats-server RSS", "natsRss"],
      ].map(([name, field]) => ({
        process: name,
        first: mb(first[field]),
        last: mb(last[field]),
        growth: mb(growth(field)),
      })),
    );
    say(passed ? "soak passed" : "soak FAILED");
  }
  process.exitCode = passed ? 0 : 1;
} finally {
  clearInterval(sampler);
  await mesh?.close().catch(() => undefined);
  await Promise.allSettled(started.map((p) => p.kill()));
  await server.dispose();
}
