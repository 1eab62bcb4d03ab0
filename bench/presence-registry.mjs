// The registry of the presence benchmark, in its own process so its CPU can be measured alone.
import { startRegistry } from "@natsmesh/registry";

const [url, prefix, heartbeatTimeoutMs] = process.argv.slice(2);
const registry = await startRegistry({
  servers: url,
  prefix,
  heartbeatTimeoutMs: Number(heartbeatTimeoutMs),
});
process.send?.("ready");
process.on("message", async (m) => {
  if (m === "cpu") process.send?.({ cpu: process.cpuUsage(), leader: registry.isLeader });
  if (m === "stop") {
    await registry.stop();
    process.exit(0);
  }
});
