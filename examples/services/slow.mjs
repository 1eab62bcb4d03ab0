// An example service module: `slow.work` sleeps, then says how long. { ms } in the payload, or
// SLOW_MS (default 100) when it gives none; at most 60 s. It stops sleeping when ctx.signal
// aborts (the caller's deadline passed, or the agent is stopping), so a caller that gave up
// frees its slot at once. Useful to watch `least-loaded` balancing and deadlines at work.
// Run it: natsmesh agent examples/services/slow.mjs [--concurrency 4]
import { setTimeout as sleep } from "node:timers/promises";
import { MeshError } from "@natsmesh/agent";

const MAX_MS = 60_000;
const DEFAULT_MS = defaultMs(process.env.SLOW_MS);

function defaultMs(text) {
  if (text === undefined || text.trim() === "") return 100;
  const ms = Number(text);
  if (!Number.isInteger(ms) || ms < 0 || ms > MAX_MS) {
    throw new TypeError(`SLOW_MS must be whole milliseconds from 0 to ${MAX_MS}, got ${text}`);
  }
  return ms;
}

export default {
  service: "slow",
  version: "1.0.0",
  methods: {
    work: async (payload, ctx) => {
      const ms = typeof payload === "object" && payload !== null ? payload.ms : undefined;
      if (ms !== undefined && (!Number.isInteger(ms) || ms < 0 || ms > MAX_MS)) {
        throw new MeshError("BAD_REQUEST", `ms must be whole milliseconds from 0 to ${MAX_MS}`);
      }
      const started = Date.now();
      // Rejects as soon as ctx.signal aborts; the agent then answers DEADLINE_EXCEEDED.
      await sleep(ms ?? DEFAULT_MS, undefined, { signal: ctx.signal });
      return { slept: Date.now() - started, instance: ctx.instance.id };
    },
  },
};
