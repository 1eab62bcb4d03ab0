// `npm run bench -- request`: one request/reply echo, five ways, on one nats-server, in one run:
//
//   mux        plain nats.js publish + one wildcard reply subscription + a Map (msgpackr): the
//              least any request/reply over nats.js can cost, and the design the SDK follows
//   request    nats.js request() (msgpackr)
//   mesh       natsmesh mesh.request(), queue balancing, msgpack, no auth
//   mesh-metrics  the same against an agent with its Prometheus endpoint on: natsmesh's metrics
//   mesh-otel  the same, read by a user's OpenTelemetry SDK: a global MeterProvider whose reader
//              has natsmeshMetricProducer() and exports every second (see request-responders.mjs)
//   mesh-auth  the same against an agent that checks a real EdDSA token against a JWKS
//   moleculer  Moleculer 0.14 broker.call() over its NATS transporter, JSON, no auth
//
// Scenarios take turns in short rounds; each reports the median of its rounds: req/s, p50/p99
// and the CPU time per call of every process involved (client, responder, nats-server).
import { fork } from "node:child_process";
import { createInbox } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { connectMesh } from "@natsmesh/sdk";
import { startNatsServer } from "@natsmesh/testing";
import Moleculer from "moleculer";
import { Packr } from "msgpackr";
import { PROC_TICK_US, procCpuMicros, selfCpuMicros } from "./cpu.mjs";
import { benchAuth, closedLoop, medianOf, parseArgs, table } from "./lib.mjs";
import {
  meshNatsOptions,
  moleculerOptions,
  natsOptions,
  startResponders,
  stopUserOtel,
  userOtel,
} from "./request-responders.mjs";

const SCENARIOS = ["mux", "request", "mesh", "mesh-metrics", "mesh-otel", "mesh-auth", "moleculer"];
const LAYOUTS = {
  inproc: "client and responders in one process, nats-server in another",
  split: "client in one process, responders in another, nats-server in a third",
};

export async function run(args) {
  const opts = parseArgs(args, {
    duration: 1000,
    warmup: 200,
    rounds: 5,
    sizes: "60",
    inflight: "128,1",
    layouts: "inproc,split",
    scenarios: SCENARIOS.join(","),
    "pending-limit": 0,
    "max-minutes": 30,
    "nats-profile": 0,
    json: false,
  });
  const list = (value, known) => {
    const items = String(value).split(",");
    for (const item of items) {
      if (known !== undefined && !known.includes(item)) {
        throw new TypeError(`unknown ${item}: choose from ${known.join(", ")}`);
      }
    }
    return items;
  };
  const scenarios = list(opts.scenarios, SCENARIOS);
  const layouts = list(opts.layouts, Object.keys(LAYOUTS));
  const sizes = list(opts.sizes).map(Number);
  const inflights = list(opts.inflight).map(Number);
  const pendingLimit = opts["pending-limit"];
  const cells = layouts.length * sizes.length * inflights.length * scenarios.length * opts.rounds;
  const estimateMin = (cells * (opts.duration + opts.warmup)) / 60_000;
  if (estimateMin > opts["max-minutes"]) {
    throw new TypeError(
      `this run would take about ${estimateMin.toFixed(1)} min, over --max-minutes ${opts["max-minutes"]}: ` +
        "use fewer rounds, scenarios or cells, or raise --max-minutes",
    );
  }
  const abortAt = Date.now() + opts["max-minutes"] * 60_000;

  const flush =
    pendingLimit > 0
      ? `nats.js flush: inline once ${pendingLimit} B are buffered (pendingLimit set), else in a microtask`
      : "nats.js flush: a publish schedules a microtask flush; buffered bytes are written inline at " +
        "32 KiB (nats.js default: mux, request, Moleculer) or 256 KiB (natsmesh's own connections)";
  const { keys, token } = await benchAuth();
  const jwks = JSON.stringify(keys.jwks);
  // --nats-profile <port>: nats-server serves Go's pprof on 127.0.0.1:<port> (docs/benchmarks.md).
  const profile = opts["nats-profile"] > 0 ? ["--profile", String(opts["nats-profile"])] : [];
  const server = await startNatsServer({ runtime: "process", jetstream: false, args: profile });
  const out = { flush, server: server.url, layouts: {} };
  if (!opts.json) console.log(`${flush}\nnats-server ${server.url} (pid ${server.pid})\n`);
  try {
    for (const layout of layouts) {
      const rows = await runLayout(layout, {
        ...opts,
        url: server.url,
        serverPid: server.pid,
        scenarios,
        sizes,
        inflights,
        pendingLimit,
        jwks,
        token,
        abortAt,
      });
      out.layouts[layout] = rows;
      if (!opts.json) {
        console.log(`layout ${layout}: ${LAYOUTS[layout]}`);
        table(rows);
        console.log();
      }
    }
  } finally {
    await server.dispose();
  }
  if (opts.json) console.log(JSON.stringify(out, null, 2));
}

async function runLayout(layout, o) {
  const tag = `${process.pid}${layout[0]}`;
  const prefix = `bench${tag}`;
  const namespace = `bench${tag}`;
  const wantMoleculer = o.scenarios.includes("moleculer");
  // A user's OpenTelemetry SDK only in runs that measure it: the others have none at all.
  const wantOtel = o.scenarios.includes("mesh-otel");

  // The responders: here, or in a child that reports its CPU time when asked.
  let responders;
  let child;
  if (layout === "inproc") {
    responders = await startResponders({
      url: o.url,
      prefix,
      jwks: o.jwks,
      namespace: wantMoleculer ? namespace : undefined,
      pendingLimit: o.pendingLimit,
      otel: wantOtel,
    });
  } else {
    child = fork(
      new URL("./responder.mjs", import.meta.url),
      wantMoleculer ? [o.url, prefix, namespace] : [o.url, prefix],
      {
        stdio: "inherit",
        env: {
          ...process.env,
          BENCH_JWKS: o.jwks,
          BENCH_PENDING_LIMIT: String(o.pendingLimit),
          BENCH_OTEL: wantOtel ? "1" : "0",
        },
      },
    );
    await new Promise((resolve, reject) => {
      child.once("message", resolve);
      child.once("exit", (code) => reject(new Error(`responder exited with ${code}`)));
    });
  }
  if (!o.json) {
    // For attaching a profiler (see docs/benchmarks.md) while the rounds run.
    const responder = child === undefined ? "" : `, responders ${child.pid}`;
    console.log(`layout ${layout}: client ${process.pid}${responder}, nats-server ${o.serverPid}`);
  }
  const childCpu = () =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("responder did not report its CPU")), 5000);
      child.once("message", (m) => {
        clearTimeout(timer);
        resolve(m.cpu);
      });
      child.send("cpu");
    });
  const sample = async () => ({
    self: selfCpuMicros(),
    child: child === undefined ? 0 : await childCpu(),
    nats: procCpuMicros(o.serverPid),
  });

  // The clients, each on its own connection.
  const packr = new Packr({ useRecords: false });
  const nc = await connect(natsOptions(o.url, o.pendingLimit));
  const plainSubject = `${prefix}.plain.echo`;
  const inbox = createInbox();
  const pending = new Map();
  let seq = 0;
  nc.subscribe(`${inbox}.*`, {
    callback: (_err, msg) => {
      const id = msg.subject.slice(inbox.length + 1);
      const resolve = pending.get(id);
      pending.delete(id);
      resolve?.(packr.unpack(msg.data));
    },
  });
  const meshNc = await connect(meshNatsOptions(o.url, o.pendingLimit));
  const mesh = await connectMesh({ connection: meshNc, prefix, presence: false });
  if (wantOtel) userOtel();
  const meteredNc = await connect(meshNatsOptions(o.url, o.pendingLimit));
  const metered = await connectMesh({
    connection: meteredNc,
    prefix,
    presence: false,
  });
  const authNc = await connect(meshNatsOptions(o.url, o.pendingLimit));
  const authed = await connectMesh({ connection: authNc, prefix, presence: false, token: o.token });
  let broker;
  if (wantMoleculer) {
    broker = new Moleculer.ServiceBroker(
      moleculerOptions(o.url, namespace, `client-${process.pid}`, o.pendingLimit),
    );
    await broker.start();
    await broker.waitForServices(["bench"], 10_000);
  }
  const calls = {
    mux: (payload) => () =>
      new Promise((resolve) => {
        const id = (++seq).toString(36);
        pending.set(id, resolve);
        nc.publish(plainSubject, packr.pack(payload), { reply: `${inbox}.${id}` });
      }),
    request: (payload) => async () => {
      const msg = await nc.request(plainSubject, packr.pack(payload), { timeout: 5000 });
      packr.unpack(msg.data);
    },
    mesh: (payload) => () => mesh.request("bench", "echo", payload),
    "mesh-metrics": (payload) => () => mesh.request("benchmetrics", "echo", payload),
    "mesh-otel": (payload) => () => metered.request("benchotel", "echo", payload),
    "mesh-auth": (payload) => () => authed.request("benchauth", "echo", payload),
    moleculer: (payload) => () => broker.call("bench.echo", payload),
  };

  const rows = [];
  try {
    for (const size of o.sizes) {
      // `{ data: "x" × (size − 8) }` is `size` bytes of MessagePack for sizes up to 263.
      const payload = { data: "x".repeat(Math.max(0, size - 8)) };
      for (const inflight of o.inflights) {
        const cell = { durationMs: o.duration, warmupMs: o.warmup, inflight, sample };
        const rounds = Object.fromEntries(o.scenarios.map((s) => [s, []]));
        for (let r = 0; r < o.rounds; r++) {
          // Each round starts with a different scenario, so none always follows the same one.
          for (let k = 0; k < o.scenarios.length; k++) {
            if (Date.now() > o.abortAt) throw new Error("--max-minutes passed; stopping");
            const name = o.scenarios[(r + k) % o.scenarios.length];
            rounds[name].push(await closedLoop(calls[name](payload), cell));
          }
        }
        const summaries = o.scenarios.map((name) => summarize(name, rounds[name], layout));
        const base = summaries.find((s) => s.scenario === "mux");
        for (const s of summaries) rows.push(row(size, inflight, s, base, layout));
      }
    }
  } finally {
    await broker?.stop();
    await mesh.close();
    await metered.close();
    await stopUserOtel();
    await meteredNc.close();
    await authed.close();
    await meshNc.close();
    await authNc.close();
    await nc.close();
    if (child !== undefined) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.send("stop");
      await exited;
    }
    await responders?.stop();
  }
  return rows;
}

/** Medians over the rounds of one scenario, with the spread of throughput and CPU. */
function summarize(scenario, rounds, layout) {
  const perCall = (round, key) => (round.after[key] - round.before[key]) / round.count;
  const cpu = rounds.map((r) => ({
    self: perCall(r, "self"),
    child: perCall(r, "child"),
    nats: perCall(r, "nats"),
    natsTicks: (r.after.nats - r.before.nats) / PROC_TICK_US,
  }));
  const total = cpu.map((c) => c.self + c.child + c.nats);
  return {
    scenario,
    layout,
    rps: medianOf(rounds.map((r) => r.rps)),
    rpsMin: Math.min(...rounds.map((r) => r.rps)),
    rpsMax: Math.max(...rounds.map((r) => r.rps)),
    p50: medianOf(rounds.map((r) => r.p50)),
    p99: medianOf(rounds.map((r) => r.p99)),
    cpu: medianOf(total),
    cpuMin: Math.min(...total),
    cpuMax: Math.max(...total),
    self: medianOf(cpu.map((c) => c.self)),
    child: medianOf(cpu.map((c) => c.child)),
    nats: medianOf(cpu.map((c) => c.nats)),
    natsTicks: medianOf(cpu.map((c) => c.natsTicks)),
    calls: rounds.reduce((n, r) => n + r.count, 0),
  };
}

function row(size, inflight, s, base, layout) {
  const ratio = (a, b) => (b === undefined ? "" : (a / b).toFixed(2));
  const us = (v) => v.toFixed(1);
  const parts =
    layout === "inproc"
      ? { "process µs": us(s.self) }
      : { "client µs": us(s.self), "responder µs": us(s.child) };
  return {
    size,
    inflight,
    scenario: s.scenario,
    "req/s": s.rps,
    "req/s min–max": `${s.rpsMin}–${s.rpsMax}`,
    "×mux": ratio(s.rps, base?.rps),
    "p50/p99 µs": `${s.p50}/${s.p99}`,
    "CPU µs/call": us(s.cpu),
    "CPU min–max": `${us(s.cpuMin)}–${us(s.cpuMax)}`,
    "CPU ×mux": ratio(s.cpu, base?.cpu),
    ...parts,
    "nats-server µs": us(s.nats),
    calls: s.calls,
  };
}
