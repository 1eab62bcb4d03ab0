// `npm run bench -- dispatch`: the agent's side of a call, without the network's noise. Frames
// in the SDK's exact layout (`HMSG` with content type, deadline and, with --auth, a token
// reference) are handed in batches of 128 to the parser of the agent's own nats.js connection,
// so each one runs what a request costs an agent: nats.js' parsing, the reply guard, header
// read, admission, decoding, the echo handler, encoding and framing the reply, which goes out
// to a real nats-server (nobody listens on its inbox). Prints the agent process's CPU µs per
// call (process.cpuUsage), median of --rounds rounds. Uses nats.js internals (`protocol.parser`,
// the subscription's sid) to inject the frames: a measuring tool, not an API.
import { connect } from "@nats-io/transport-node";
import { startAgent } from "@natsmesh/agent";
import { generateKeyPair, issueToken } from "@natsmesh/protocol";
import { connectionOptions, tokenRef } from "@natsmesh/protocol/internal";
import { connectMesh } from "@natsmesh/sdk";
import { startNatsServer } from "@natsmesh/testing";
import { Packr } from "msgpackr";
import pino from "pino";
import { medianOf, parseArgs } from "./lib.mjs";

const BATCH = 128;

export async function run(args) {
  const opts = parseArgs(args, { rounds: 7, batches: 1000, auth: false });
  if (!(opts.rounds >= 1 && opts.rounds <= 100 && opts.batches >= 1 && opts.batches <= 100_000)) {
    throw new TypeError("--rounds 1–100, --batches 1–100000");
  }
  const server = await startNatsServer();
  const prefix = `dispatch${process.pid}`;
  const nc = await connect(connectionOptions(server.url, "bench-dispatch"));
  let token;
  let auth;
  if (opts.auth) {
    const keys = await generateKeyPair();
    token = await issueToken({
      key: keys.privateJwk,
      sub: "bench",
      scope: "bench.echo",
      ttl: 3600,
    });
    auth = { jwks: JSON.stringify(keys.jwks) };
  }
  const agent = await startAgent({
    connection: nc,
    prefix,
    service: "bench",
    concurrency: 4096,
    methods: { echo: (payload) => payload },
    logger: pino({ level: "silent" }),
    ...(auth === undefined ? {} : { auth }),
  });
  try {
    if (token !== undefined) {
      // The agent verifies the token once (the SDK's first call sends it in full) and accepts
      // its reference from then on, as in the request benchmark.
      const callerNc = await connect({ servers: server.url });
      const mesh = await connectMesh({ connection: callerNc, prefix, presence: false, token });
      await mesh.request("bench", "echo", 1);
      await mesh.close();
      await callerNc.close();
    }
    await nc.flush();
    const protocol = nc.protocol;
    const sub = [...protocol.subscriptions.all()].find(
      (s) => s.subject === `${prefix}.svc.bench.*`,
    );
    if (sub === undefined) throw new Error("the agent's queue subscription was not found");
    const frames = batch(prefix, sub.sid, token);
    const perCall = [];
    for (let r = 0; r < opts.rounds; r++) {
      const before = process.cpuUsage();
      for (let i = 0; i < opts.batches; i++) {
        // A fresh buffer per batch, as a socket read gives.
        protocol.parser.parse(Buffer.from(frames));
        // Let the replies' writes and the timers run, as between socket reads.
        if (i % 8 === 7) await new Promise((resolve) => setImmediate(resolve));
      }
      await nc.flush();
      const used = process.cpuUsage(before);
      perCall.push((used.user + used.system) / (opts.batches * BATCH));
    }
    const sorted = [...perCall].sort((a, b) => a - b);
    console.log(
      `agent CPU per call (${opts.auth ? "token reference checked" : "no auth"}): ` +
        `${medianOf(perCall).toFixed(3)} µs median of ${opts.rounds} rounds of ` +
        `${opts.batches} × ${BATCH} calls (${sorted[0].toFixed(3)}–${sorted.at(-1).toFixed(3)})`,
    );
  } finally {
    await agent.stop();
    await nc.close();
    await server.stop();
  }
}

/** 128 requests as the SDK frames them, with distinct inbox reply subjects. */
function batch(prefix, sid, token) {
  const payload = new Packr({ useRecords: false }).pack({ data: "x".repeat(52) });
  const ref = token === undefined ? "" : `Mesh-Token-Ref: ${tokenRef(token)}\r\n`;
  const block = `NATS/1.0\r\nContent-Type: application/msgpack\r\nMesh-Deadline: ${Date.now() + 3_600_000}\r\n${ref}\r\n`;
  const parts = [];
  for (let i = 0; i < BATCH; i++) {
    const reply = `_INBOX.Xy3Jm9Q2p8vZ0aB1cD2eF4.${1_000_000 + i}`;
    const size = block.length + payload.length;
    parts.push(
      Buffer.from(`HMSG ${prefix}.svc.bench.echo ${sid} ${reply} ${block.length} ${size}\r\n`),
      Buffer.from(block),
      payload,
      Buffer.from("\r\n"),
    );
  }
  return Buffer.concat(parts);
}
