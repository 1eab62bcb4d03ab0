// `npm run bench -- auth`: the same natsmesh call to an agent without auth and to one that
// verifies a token on every call (EdDSA, cached after the first verification), in interleaved
// rounds on one nats-server. Target: auth on keeps >= 95 % of auth-off throughput at 128 in flight.
import { fork } from "node:child_process";
import { connectMesh } from "@natsmesh/sdk";
import { startNatsServer } from "@natsmesh/testing";
import { benchAuth, closedLoop, median, parseArgs, table } from "./lib.mjs";

export async function run(args) {
  const opts = parseArgs(args, {
    duration: 5000,
    warmup: 300,
    rounds: 5,
    inflight: "1,128",
    json: false,
  });
  const { keys, token } = await benchAuth();
  const prefix = `benchauth${process.pid}`;
  const server = await startNatsServer({ runtime: "process", jetstream: false });
  const responder = fork(new URL("./responder.mjs", import.meta.url), [server.url, prefix], {
    stdio: "inherit",
    env: { ...process.env, BENCH_JWKS: JSON.stringify(keys.jwks) },
  });
  await new Promise((resolve, reject) => {
    responder.once("message", resolve);
    responder.once("exit", (code) => reject(new Error(`responder exited with ${code}`)));
  });
  const mesh = await connectMesh({ servers: server.url, prefix, presence: false });
  const authed = await connectMesh({ servers: server.url, prefix, presence: false, token });
  const payload = { data: "x".repeat(56) };
  const rows = [];
  for (const inflight of opts.inflight.split(",").map(Number)) {
    const cell = { durationMs: opts.duration / opts.rounds, warmupMs: opts.warmup, inflight };
    const off = [];
    const on = [];
    for (let i = 0; i < opts.rounds; i++) {
      off.push(await closedLoop(() => mesh.request("bench", "echo", payload), cell));
      on.push(await closedLoop(() => authed.request("benchauth", "echo", payload), cell));
    }
    const [a, b] = [median(off), median(on)];
    rows.push({
      inflight,
      "auth off rps": a.rps,
      "auth on rps": b.rps,
      "on/off": (b.rps / a.rps).toFixed(3),
      "off p50/p99 µs": `${a.p50}/${a.p99}`,
      "on p50/p99 µs": `${b.p50}/${b.p99}`,
    });
  }
  if (opts.json) console.log(JSON.stringify(rows, null, 2));
  else table(rows);
  responder.send("stop");
  await new Promise((r) => responder.once("exit", r));
  await mesh.close();
  await authed.close();
  await server.dispose();
}
