import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { MeshError, startAgent } from "@natsmesh/agent";
import { connectMesh } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup, uniquePrefix } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestSetup;

beforeAll(async () => {
  t = await setup();
});
afterAll(() => cleanup(t));

/** One sample of a scrape: its metric name, labels and value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format; every sample's family has a TYPE line. */
function parse(text: string): Sample[] {
  const typed = new Set<string>();
  const out: Sample[] = [];
  for (const line of text.trimEnd().split("\n")) {
    if (line === "") continue;
    const type = /^# TYPE (\S+) (counter|gauge|histogram)$/.exec(line);
    if (type) {
      typed.add(type[1]!);
      continue;
    }
    // HELP, and UNIT (OpenMetrics), which Prometheus' text parser reads as a comment.
    if (line.startsWith("# HELP ") || line.startsWith("# UNIT ")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    expect(m, line).not.toBeNull();
    const name = m![1]!;
    const family = name.replace(/_(bucket|sum|count)$/, "");
    expect(typed.has(name) || typed.has(family), `no TYPE for ${line}`).toBe(true);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m![2] ?? "").matchAll(
      /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g,
    )) {
      labels[k!] = v!;
    }
    out.push({ name, labels, value: Number(m![3]) });
  }
  return out;
}

/** The value of the one sample named `name` whose labels include `labels`. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  expect(found, `${name} ${JSON.stringify(labels)}`).toHaveLength(1);
  return found[0]!.value;
}

async function scrape(port: number): Promise<Sample[]> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
  return parse(await res.text());
}

describe("the agent's Prometheus endpoint", () => {
  it("serves call counts, durations and errors by code after calls", async () => {
    const prefix = uniquePrefix("pm");
    await using agent = await startAgent({
      connection: t.nc,
      prefix,
      service: "shop",
      version: "2.1.0",
      metrics: { port: 0 },
      methods: {
        buy: (n: number) => n,
        refuse: () => {
          throw new MeshError("INSUFFICIENT_FUNDS", "no money", { status: 409 });
        },
      },
    });
    await using mesh = await connectMesh({ connection: t.nc, prefix, presence: false });
    const port = agent.metricsPort!;
    expect(port).toBeGreaterThan(0);

    for (let i = 0; i < 4; i++) await mesh.request("shop", "buy", i);
    await expect(mesh.request("shop", "refuse", 0, { retries: 0 })).rejects.toMatchObject({
      code: "INSUFFICIENT_FUNDS",
    });
    const s = await scrape(port);
    const ok = { rpc_method: "shop/buy", rpc_response_status_code: "OK" };
    expect(value(s, "rpc_server_call_duration_count", { ...ok, rpc_system_name: "natsmesh" })).toBe(
      4,
    );
    expect(value(s, "rpc_server_call_duration_sum", ok)).toBeGreaterThan(0);
    // Buckets are cumulative and end with +Inf, which holds every call.
    expect(value(s, "rpc_server_call_duration_bucket", { ...ok, le: "+Inf" })).toBe(4);
    expect(value(s, "rpc_server_call_duration_bucket", { ...ok, le: "10" })).toBe(4);
    expect(
      value(s, "rpc_server_call_duration_count", {
        rpc_method: "shop/refuse",
        error_type: "INSUFFICIENT_FUNDS",
      }),
    ).toBe(1);
    expect(value(s, "natsmesh_server_inflight", { natsmesh_service: "shop" })).toBe(0);
    expect(value(s, "natsmesh_server_rejections_total", { natsmesh_reason: "concurrency" })).toBe(
      0,
    );
    // target_info says which instance this is.
    expect(
      value(s, "target_info", {
        service_name: "shop",
        service_version: "2.1.0",
        service_instance_id: agent.id,
      }),
    ).toBe(1);

    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: "POST" })).status).toBe(405);
  });

  it("takes its port from MESH_METRICS_PORT, and stops serving when the agent stops", async () => {
    // A free port: bind one, note it, let it go.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const saved = process.env.MESH_METRICS_PORT;
    process.env.MESH_METRICS_PORT = String(port);
    let agent: Awaited<ReturnType<typeof startAgent>>;
    try {
      agent = await startAgent({
        connection: t.nc,
        prefix: uniquePrefix("pe"),
        service: "envy",
        methods: { m: () => 1 },
      });
    } finally {
      if (saved === undefined) delete process.env.MESH_METRICS_PORT;
      else process.env.MESH_METRICS_PORT = saved;
    }
    expect(agent.metricsPort).toBe(port);
    expect(
      value(await scrape(port), "natsmesh_server_inflight", { natsmesh_service: "envy" }),
    ).toBe(0);
    await agent.stop();
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });

  it("refuses to start on a port in use, before announcing anything", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as AddressInfo).port;
    const prefix = uniquePrefix("pt");
    const announced: string[] = [];
    const sub = t.nc.subscribe(`${prefix}.presence.>`, {
      callback: (_err, msg) => {
        announced.push(msg.subject);
      },
    });
    try {
      await expect(
        startAgent({
          connection: t.nc,
          prefix,
          service: "clash",
          metrics: { port },
          methods: { m: () => 1 },
        }),
      ).rejects.toMatchObject({ code: "EADDRINUSE" });
      await t.nc.flush();
      expect(announced).toEqual([]);
    } finally {
      sub.unsubscribe();
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  it("refuses a bad port at once", async () => {
    await expect(
      startAgent({
        connection: t.nc,
        service: "bad",
        metrics: { port: 70000 },
        methods: { m: () => 1 },
      }),
    ).rejects.toThrow(TypeError);
  });
});
