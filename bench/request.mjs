// `npm run bench -- request`: natsmesh (queue balancing) against raw nats.js request() and a
// hand-rolled muxed baseline (plain publish + one wildcard reply subscription + a Map), all with
// msgpack payloads, on one nats-server, in one run. Prints req/s, p50/p99 and ratios.
import { fork } from "node:child_process";
import { createInbox } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { connectMesh } from "@natsmesh/sdk";
import { startNatsServer } from "@natsmesh/testing";
import { Packr } from "msgpackr";
import { closedLoop, median, parseArgs, table } from "./lib.mjs";

export async function run(args) {
  const opts = parseArgs(args, {
    duration: 3000,
    warmup: 300,
    rounds: 5,
    json: false,
    sizes: "64,1024",
    inflight: "1,16,128",
  });
  const sizes = opts.sizes.split(",").map(Number);
  const inflights = opts.inflight.split(",").map(Number);
  const prefix = `bench${process.pid}`;
  const server = await startNatsServer({ runtime: "process", jetstream: false });
  const responder = fork(new URL("./responder.mjs", import.meta.url), [server.url, prefix], {
    stdio: "inherit",
  });
  await new Promise((resolve, reject) => {
    responder.once("message", resolve);
    responder.once("exit", (code) => reject(new Error(`responder exited with ${code}`)));
  });

  const packr = new Packr({ useRecords: false });
  const nc = await connect({ servers: server.url });
  const plainSubject = `${prefix}.plain.echo`;

  // Baseline 1: nats.js request(), one subscription-less mux per request inside nats.js.
  const raw = (payload) => async () => {
    const msg = await nc.request(plainSubject, packr.pack(payload), { timeout: 5000 });
    packr.unpack(msg.data);
  };

  // Baseline 2: the design the SDK follows, with nothing else (no headers, deadlines or retries).
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
  const muxed = (payload) => () =>
    new Promise((resolve) => {
      const id = (++seq).toString(36);
      pending.set(id, resolve);
      nc.publish(plainSubject, packr.pack(payload), { reply: `${inbox}.${id}` });
    });

  const mesh = await connectMesh({ connection: nc, prefix });
  const natsmesh = (payload) => () => mesh.request("bench", "echo", payload);

  const rows = [];
  for (const size of sizes) {
    const payload = { data: "x".repeat(Math.max(0, size - 8)) };
    for (const inflight of inflights) {
      // The machine drifts; scenarios take turns in short rounds and each reports its median round.
      const cell = { durationMs: opts.duration / opts.rounds, warmupMs: opts.warmup, inflight };
      const rounds = { b: [], r: [], m: [] };
      for (let i = 0; i < opts.rounds; i++) {
        rounds.b.push(await closedLoop(muxed(payload), cell));
        rounds.r.push(await closedLoop(raw(payload), cell));
        rounds.m.push(await closedLoop(natsmesh(payload), cell));
      }
      const [b, r, m] = [median(rounds.b), median(rounds.r), median(rounds.m)];
      rows.push({
        size,
        inflight,
        "muxed rps": b.rps,
        "request() rps": r.rps,
        "natsmesh rps": m.rps,
        "mesh/muxed": (m.rps / b.rps).toFixed(2),
        "mesh/request()": (m.rps / r.rps).toFixed(2),
        "muxed p50/p99 µs": `${b.p50}/${b.p99}`,
        "request() p50/p99 µs": `${r.p50}/${r.p99}`,
        "mesh p50/p99 µs": `${m.p50}/${m.p99}`,
      });
    }
  }
  if (opts.json) console.log(JSON.stringify(rows, null, 2));
  else table(rows);

  responder.send("stop");
  await new Promise((r) => responder.once("exit", r));
  await mesh.close();
  await nc.close();
  await server.dispose();
}
