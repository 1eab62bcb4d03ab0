// The server side of the request benchmark, in its own process so client and responder do not
// share one event loop: a plain nats.js echo (msgpack in, msgpack out) and a natsmesh agent.
import { connect } from "@nats-io/transport-node";
import { startAgent } from "@natsmesh/agent";
import { Packr } from "msgpackr";

const [url, prefix] = process.argv.slice(2);
const packr = new Packr({ useRecords: false });
const nc = await connect({ servers: url });
nc.subscribe(`${prefix}.plain.echo`, {
  callback: (_err, msg) => msg.respond(packr.pack(packr.unpack(msg.data))),
});
const agent = await startAgent({
  connection: nc,
  prefix,
  service: "bench",
  concurrency: 4096,
  methods: { echo: (payload) => payload },
});
// With BENCH_JWKS set, a second agent checks tokens: the auth benchmark compares the two.
const authed =
  process.env.BENCH_JWKS === undefined
    ? undefined
    : await startAgent({
        connection: nc,
        prefix,
        service: "benchauth",
        concurrency: 4096,
        auth: { jwks: process.env.BENCH_JWKS },
        methods: { echo: (payload) => payload },
      });
await nc.flush();
process.send?.("ready");
process.on("message", async (m) => {
  if (m === "stop") {
    await agent.stop();
    await authed?.stop();
    await nc.close();
    process.exit(0);
  }
});
