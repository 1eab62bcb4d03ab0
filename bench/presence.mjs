// `npm run bench -- presence`: N simulated instances (one process publishes their presence as
// agents would) through a registry into the KV bucket and out to several SDK caches. Measures
// announce→visible and stop→evicted latency in every cache, registry CPU and KV writes in
// steady state, and the SDK heap of a large view.
import { fork } from "node:child_process";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { presenceBucket, presenceKey, subjects } from "@natsmesh/protocol";
import { connectMesh } from "@natsmesh/sdk";
import { startNatsServer } from "@natsmesh/testing";
import { parseArgs, table } from "./lib.mjs";

const pct = (values, p) => {
  const s = [...values].sort((a, b) => a - b);
  return s.length === 0
    ? Number.NaN
    : Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))]);
};

async function waitFor(check, timeoutMs, what) {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function record(prefix, i, startedAt) {
  const id = `SIM${String(i).padStart(6, "0")}`;
  return {
    v: 1,
    id,
    service: `svc${i % 20}`,
    version: "1.0.0",
    weight: 100,
    status: "ready",
    methods: ["a", "b"],
    subject: `${prefix}.inst.svc${i % 20}.${id}`,
    host: "bench",
    pid: process.pid,
    metadata: { bench: "presence" },
    startedAt,
  };
}

export async function run(args) {
  const o = parseArgs(args, {
    instances: 1000,
    clients: 3,
    heartbeat: 1000,
    steady: 10000,
    heap: 10000,
  });
  const timeoutMs = 3 * o.heartbeat;
  const prefix = `benchp${process.pid}`;
  const s = subjects(prefix);
  const server = await startNatsServer({ runtime: "process" });
  const registry = fork(new URL("./presence-registry.mjs", import.meta.url), [
    server.url,
    prefix,
    String(timeoutMs),
  ]);
  await new Promise((r) => registry.once("message", r));
  const ask = () =>
    new Promise((r) => {
      registry.once("message", r);
      registry.send("cpu");
    });
  const nc = await connect({ servers: server.url });
  const meshes = await Promise.all(
    Array.from({ length: o.clients }, () => connectMesh({ servers: server.url, prefix })),
  );

  // Announce→visible: every instance's `up` is timed until each cache reports it.
  const sentAt = new Map();
  const visible = [];
  const evicted = [];
  const stoppedAt = new Map();
  const controllers = meshes.map(() => new AbortController());
  meshes.forEach((mesh, m) => {
    (async () => {
      for await (const ev of mesh.watch(undefined, { signal: controllers[m].signal })) {
        const t = performance.now();
        if (ev.type === "up" && sentAt.has(ev.instance.id))
          visible.push(t - sentAt.get(ev.instance.id));
        if (ev.type === "down" && stoppedAt.has(ev.instance.id))
          evicted.push(t - stoppedAt.get(ev.instance.id));
      }
    })();
  });
  const records = Array.from({ length: o.instances }, (_, i) => record(prefix, i, Date.now()));
  let seq = 0;
  const live = new Set(records.map((r) => r.id));
  const beat = () => {
    seq++;
    for (const r of records) {
      if (!live.has(r.id)) continue;
      nc.publish(
        s.presence(r.service, r.id),
        JSON.stringify({
          kind: "hb",
          service: r.service,
          id: r.id,
          seq,
          inflight: 0,
          status: "ready",
        }),
      );
    }
  };
  for (const r of records) {
    sentAt.set(r.id, performance.now());
    nc.publish(s.presence(r.service, r.id), JSON.stringify({ kind: "up", instance: r }));
  }
  const hb = setInterval(beat, o.heartbeat);
  await waitFor(
    () => visible.length >= o.instances * o.clients,
    30_000,
    "every instance in every cache",
  );

  // Steady state: heartbeats only. Registry CPU and KV writes over the window.
  const kv = await new Kvm(nc).open(presenceBucket(prefix));
  const lastSeq = async () => (await kv.status()).streamInfo.state.last_seq;
  const seq0 = await lastSeq();
  const cpu0 = (await ask()).cpu;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, o.steady));
  const cpu1 = (await ask()).cpu;
  const seconds = (performance.now() - t0) / 1000;
  const writes = (await lastSeq()) - seq0;
  const registryCpu = ((cpu1.user - cpu0.user + cpu1.system - cpu0.system) / 1e6 / seconds) * 100;

  // One at a time: 100 more instances announced 20 ms apart (a rolling deploy, not a burst).
  const burst = [...visible];
  const trickle = [];
  const trickleStart = visible.length;
  for (let i = 0; i < 100; i++) {
    const r = record(prefix, o.instances + i, Date.now());
    records.push(r);
    live.add(r.id);
    sentAt.set(r.id, performance.now());
    nc.publish(s.presence(r.service, r.id), JSON.stringify({ kind: "up", instance: r }));
    await new Promise((res) => setTimeout(res, 20));
  }
  await waitFor(
    () => visible.length >= trickleStart + 100 * o.clients,
    30_000,
    "trickled instances in every cache",
  );
  trickle.push(...visible.slice(trickleStart));

  // Stop→evicted: 10 % of the instances stop heartbeating, as a kill -9 would leave them.
  const victims = records.slice(0, Math.max(1, Math.floor(o.instances / 10)));
  for (const r of victims) {
    live.delete(r.id);
    stoppedAt.set(r.id, performance.now());
  }
  await waitFor(
    () => evicted.length >= victims.length * o.clients,
    timeoutMs + 30_000,
    "evictions in every cache",
  );
  clearInterval(hb);
  for (const c of controllers) c.abort();
  for (const m of meshes) await m.close();

  // Heap of a view of `heap` instances, in a fresh process.
  const heapPrefix = `${prefix}h`;
  const heapKv = await new Kvm(nc).create(presenceBucket(heapPrefix), { history: 1 });
  for (let i = 0; i < o.heap; i++) {
    const r = record(heapPrefix, i, Date.now());
    await heapKv.put(presenceKey(r.service, r.id), JSON.stringify(r));
  }
  const heapChild = fork(
    new URL("./presence-heap.mjs", import.meta.url),
    [server.url, heapPrefix, String(o.heap)],
    { execArgv: ["--expose-gc"] },
  );
  const heap = await new Promise((r) => heapChild.once("message", r));

  table([
    {
      measure: `announce → visible in ${o.clients} caches, one at a time (100, 20 ms apart)`,
      p50: `${pct(trickle, 0.5)} ms`,
      p99: `${pct(trickle, 0.99)} ms`,
      target: "",
    },
    {
      measure: `announce → visible in ${o.clients} caches, burst (${o.instances} at once)`,
      p50: `${pct(burst, 0.5)} ms`,
      p99: `${pct(burst, 0.99)} ms`,
      target: "",
    },
    {
      measure: `no heartbeat → evicted in every cache (${victims.length} instances)`,
      p50: `${pct(evicted, 0.5)} ms`,
      p99: `${pct(evicted, 0.99)} ms`,
      target: `heartbeat timeout ${timeoutMs} ms + sweep`,
    },
    {
      measure: `steady state, ${o.instances} instances × 1 hb/${o.heartbeat} ms`,
      p50: `registry CPU ${registryCpu.toFixed(1)} %`,
      p99: `KV writes ${(writes / seconds).toFixed(2)}/s`,
      target: "0 writes",
    },
    {
      measure: `SDK heap for a ${heap.loaded}-instance view`,
      p50: `${(heap.heapBytes / 1024 / 1024).toFixed(1)} MB`,
      p99: "",
      target: "≤ 20 MB",
    },
  ]);
  registry.send("stop");
  await new Promise((r) => registry.once("exit", r));
  await nc.close();
  await server.dispose();
}
