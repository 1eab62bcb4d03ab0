// `npm run bench -- events`: durable events in natsmesh against a hand-written @nats-io/jetstream
// baseline (publish with ack; one pull consumer with explicit acks) and Moleculer's `emit` over
// the same nats-server (fire-and-forget, not stored: for reference). Interleaved rounds, one run.
//
// Scenarios (`--scenarios`, default natsmesh,jetstream,moleculer): natsmesh; jetstream (the
// baseline: one connection, no message id); jetstream-msgid (with Nats-Msg-Id on every publish
// and natsmesh's 2-minute duplicate window); jetstream-2conn (publisher and consumer on separate
// connections, as natsmesh's emitter and agent are); jetstream-memory (memory storage: not
// durable, a reference for what the file store costs); moleculer.
//
// Two measurements, each closed-loop with `--inflight` (128) events outstanding, each with the
// CPU time per event of this process plus nats-server, and nats-server's alone:
//   publish: emit → stored (natsmesh, baseline) or → handed to the transporter (Moleculer);
//   e2e:     emit → the handler ran (the handler and the emitter are in this process; every event
//            crosses nats-server, and for natsmesh and the baseline the stream).

import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { startAgent } from "@natsmesh/agent";
import { connectMesh } from "@natsmesh/sdk";
import { startNatsServer } from "@natsmesh/testing";
import { ServiceBroker } from "moleculer";
import { Packr } from "msgpackr";
import { procCpuMicros, selfCpuMicros } from "./cpu.mjs";
import { closedLoop, median, parseArgs, table } from "./lib.mjs";

export async function run(args) {
  const opts = parseArgs(args, {
    duration: 2000,
    warmup: 300,
    rounds: 5,
    inflight: 128,
    size: 64,
    json: false,
    scenarios: "natsmesh,jetstream,moleculer",
  });
  const names = String(opts.scenarios).split(",");
  const server = await startNatsServer({ runtime: "process", jetstream: true });
  const payload = { id: 0, data: "x".repeat(Math.max(0, opts.size - 16)) };
  const cell = { durationMs: opts.duration, warmupMs: opts.warmup, inflight: opts.inflight };
  const makers = {
    natsmesh: () => natsmesh(server.url, opts.inflight),
    jetstream: () => baseline(server.url, opts.inflight, "jetstream", {}),
    "jetstream-msgid": () =>
      baseline(server.url, opts.inflight, "jetstream-msgid", { msgId: true }),
    "jetstream-memory": () =>
      baseline(server.url, opts.inflight, "jetstream-memory", { storage: "memory" }),
    "jetstream-2conn": () =>
      baseline(server.url, opts.inflight, "jetstream-2conn", { twoConnections: true }),
    moleculer: () => moleculer(server.url),
  };
  const unknown = names.find((name) => !Object.hasOwn(makers, name));
  if (unknown !== undefined) {
    await server.dispose();
    throw new TypeError(`unknown scenario ${unknown}: use ${Object.keys(makers).join(", ")}`);
  }
  const scenarios = [];
  for (const name of names) scenarios.push(await makers[name]());
  const rounds = new Map(scenarios.map((s) => [s.name, { publish: [], e2e: [] }]));
  // CPU per event, this process and nats-server together: on a shared machine throughput
  // swings with the neighbours' load, CPU time much less.
  const sample = () => ({ self: selfCpuMicros(), nats: procCpuMicros(server.pid) });
  const measure = async (fn) => {
    const r = await closedLoop(fn, { ...cell, sample });
    const nats = r.after.nats - r.before.nats;
    const self = r.after.self - r.before.self;
    return {
      ...r,
      cpu: Math.round((nats + self) / r.count),
      server: Math.round((10 * nats) / r.count) / 10,
    };
  };
  for (let i = 0; i < opts.rounds; i++) {
    // The machine drifts: every scenario takes a turn in each round; each reports its median.
    for (const s of scenarios) {
      rounds.get(s.name).publish.push(await measure(() => s.publish(payload)));
      rounds.get(s.name).e2e.push(await measure(() => s.e2e(payload)));
    }
  }
  // Ratios are against the hand-written baseline, or the first scenario when it is not run.
  const base = rounds.get("jetstream") ?? rounds.get(scenarios[0].name);
  const basePublish = median(base.publish).rps;
  const baseE2e = median(base.e2e).rps;
  const rows = scenarios.map((s) => {
    const r = rounds.get(s.name);
    const p = median(r.publish);
    const e = median(r.e2e);
    return {
      scenario: s.name,
      "publish/s": p.rps,
      "publish vs js": (p.rps / basePublish).toFixed(2),
      "publish p50/p99 µs": `${p.p50}/${p.p99}`,
      "publish CPU µs": p.cpu,
      "publish server µs": p.server,
      "e2e/s": e.rps,
      "e2e vs js": (e.rps / baseE2e).toFixed(2),
      "e2e p50/p99 µs": `${e.p50}/${e.p99}`,
      "e2e CPU µs": e.cpu,
      "e2e server µs": e.server,
    };
  });
  if (opts.json) console.log(JSON.stringify(rows, null, 2));
  else table(rows);
  for (const s of scenarios) await s.close();
  await server.dispose();
}

/** Waiters for events by id: the handler resolves what the emitter awaits. */
function waiters() {
  const pending = new Map();
  let seq = 0;
  return {
    next() {
      const id = ++seq;
      return [id, new Promise((resolve) => pending.set(id, resolve))];
    },
    done(id) {
      const resolve = pending.get(id);
      pending.delete(id);
      resolve?.();
    },
  };
}

async function natsmesh(url, inflight) {
  const prefix = `bench${process.pid}`;
  const w = waiters();
  const mesh = await connectMesh({ servers: url, prefix, presence: false });
  const agent = await startAgent({
    servers: url,
    prefix,
    service: "bench",
    events: {
      "bench.e2e": { concurrency: inflight, handler: (p) => w.done(p.id) },
    },
  });
  return {
    name: "natsmesh",
    publish: (p) => mesh.emit("bench.publish", p),
    async e2e(p) {
      const [id, handled] = w.next();
      await mesh.emit("bench.e2e", { ...p, id });
      await handled;
    },
    async close() {
      await agent.stop();
      await mesh.close();
    },
  };
}

async function baseline(
  url,
  inflight,
  name,
  { storage = "file", msgId = false, twoConnections = false },
) {
  const nc = await connect({ servers: url });
  const consumerNc = twoConnections ? await connect({ servers: url }) : nc;
  const jsm = await jetstreamManager(nc);
  const stream = `base${process.pid}${name.replace(/[^a-z]/g, "")}`;
  await jsm.streams.add({
    name: stream,
    subjects: [`${stream}.>`],
    storage,
    // natsmesh's window (2 min), so the -msgid variant deduplicates as natsmesh does.
    duplicate_window: 120_000_000_000,
  });
  let n = 0;
  // Nats-Msg-Id on every publish, as natsmesh sets it: the server then deduplicates.
  const pubOpts = () => (msgId ? { msgID: `${stream}-${++n}` } : undefined);
  await jsm.consumers.add(stream, {
    durable_name: "bench",
    ack_policy: AckPolicy.Explicit,
    filter_subject: `${stream}.e2e`,
  });
  const js = jetstream(nc);
  const packr = new Packr({ useRecords: false });
  const w = waiters();
  const consumer = await jetstream(consumerNc).consumers.get(stream, "bench");
  const messages = await consumer.consume({
    max_messages: inflight,
    callback: (m) => {
      const { id } = packr.unpack(m.data);
      m.ack();
      w.done(id);
    },
  });
  return {
    name,
    publish: (p) => js.publish(`${stream}.publish`, packr.pack(p), pubOpts()),
    async e2e(p) {
      const [id, handled] = w.next();
      await js.publish(`${stream}.e2e`, packr.pack({ ...p, id }), pubOpts());
      await handled;
    },
    async close() {
      await messages.close();
      if (consumerNc !== nc) await consumerNc.close();
      await nc.close();
    },
  };
}

async function moleculer(url) {
  const transporter = { type: "NATS", options: { url } };
  const namespace = `bench${process.pid}`;
  const emitter = new ServiceBroker({ namespace, nodeID: "emitter", transporter, logger: false });
  const handler = new ServiceBroker({ namespace, nodeID: "handler", transporter, logger: false });
  const w = waiters();
  handler.createService({
    name: "bench",
    events: {
      "bench.e2e"(ctx) {
        w.done(ctx.params.id);
      },
      "bench.publish"() {},
    },
  });
  await Promise.all([emitter.start(), handler.start()]);
  await emitter.waitForServices("bench");
  return {
    name: "moleculer emit",
    publish: (p) => emitter.emit("bench.publish", p),
    async e2e(p) {
      const [id, handled] = w.next();
      await emitter.emit("bench.e2e", { ...p, id });
      await handled;
    },
    async close() {
      await emitter.stop();
      await handler.stop();
    },
  };
}
