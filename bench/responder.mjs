// The answering side of the request and auth benchmarks in a child process, so client and
// responder do not share one event loop. Arguments: <nats url> <prefix> [<moleculer namespace>];
// env BENCH_JWKS (a key set: adds the token-checking agent), BENCH_PENDING_LIMIT (nats.js flush
// threshold), BENCH_OTEL=1 (a user's OpenTelemetry SDK reads the metrics). Messages from the parent: "cpu" (answers { cpu: microseconds }), "stop".
import { selfCpuMicros } from "./cpu.mjs";
import { startResponders } from "./request-responders.mjs";

const [url, prefix, namespace] = process.argv.slice(2);
const responders = await startResponders({
  url,
  prefix,
  jwks: process.env.BENCH_JWKS,
  namespace,
  pendingLimit: Number(process.env.BENCH_PENDING_LIMIT ?? 0),
  otel: process.env.BENCH_OTEL === "1",
});
process.send?.("ready");
process.on("message", async (m) => {
  if (m === "cpu") process.send?.({ cpu: selfCpuMicros() });
  if (m === "stop") {
    await responders.stop();
    process.exit(0);
  }
});
// The parent may die without saying stop; never outlive it.
process.on("disconnect", () => process.exit(0));
