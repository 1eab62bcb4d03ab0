import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { jetstream } from "@nats-io/jetstream";
import { MeshError, startAgent } from "@natsmesh/agent";
import { deadLetterHeaders } from "@natsmesh/protocol/internal";
import { startRegistry } from "@natsmesh/registry";
import { connectMesh } from "@natsmesh/sdk";
import {
  cleanup,
  setup,
  startNatsServer,
  type TestSetup,
  uniquePrefix,
  until,
} from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestSetup;

beforeAll(async () => {
  t = await setup();
});
afterAll(() => cleanup(t));

/** Parses Prometheus text into `name{labels}` → value, checking every sample has HELP and TYPE. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Set<string>();
  const helped = new Set<string>();
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("# UNIT ")) continue;
    const meta = /^# (HELP|TYPE) (\S+) (.+)$/.exec(line);
    if (meta) {
      (meta[1] === "HELP" ? helped : typed).add(meta[2]!);
      if (meta[1] === "TYPE") expect(["counter", "gauge"]).toContain(meta[3]);
      continue;
    }
    const sample = /^([a-z_]+)(\{[^}]*\})? (\d+(?:\.\d+)?)$/.exec(line);
    expect(sample, line).not.toBeNull();
    expect(typed.has(sample![1]!) && helped.has(sample![1]!), line).toBe(true);
    samples.set(`${sample![1]}${sample![2] ?? ""}`, Number(sample![3]));
  }
  return samples;
}

describe("http endpoint", () => {
  it("exposes per-group pending, in-flight, redelivered and dead-lettered events", async () => {
    const prefix = uniquePrefix("h");
    await using registry = await startRegistry({
      servers: t.server.url,
      prefix,
      http: { port: 0 },
    });
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let failures = 0;
    await using _agent = await startAgent({
      connection: t.nc,
      prefix,
      service: "billing",
      streams: { maxBytes: 64 * 1024 ** 2, deadLetterMaxBytes: 16 * 1024 ** 2 },
      events: {
        "order.created": { concurrency: 1, handler: () => held },
        "order.refused": () => {
          throw new MeshError("INSUFFICIENT_FUNDS", "no");
        },
        // Fails twice (retried at once, then parked for ten minutes): delivered twice, unacked.
        "order.retried": {
          backoffMs: [0, 600_000],
          handler: () => {
            failures++;
            throw new Error("ledger unreachable");
          },
        },
        // Two groups of billing's match audit.log: a dead letter of it is no one group's.
        "audit.*": () => undefined,
        "audit.>": () => undefined,
      },
    });
    await using mesh = await connectMesh({ connection: t.nc, prefix, presence: false });
    for (let i = 0; i < 3; i++) await mesh.emit("order.created", { i });
    await mesh.emit("order.refused", {});
    await mesh.emit("order.refused", {});
    await mesh.emit("order.retried", {});
    // Dead letters that no group or two of billing's match (a group since deleted, overlapping
    // patterns) are billing's alone.
    const js = jetstream(t.nc);
    for (const [event, seq] of [
      ["invoice.sent", 1001],
      ["audit.log", 1002],
    ] as const) {
      await js.publish(`${prefix}.dlq.billing.${event}`, "{}", {
        headers: deadLetterHeaders(undefined, {
          code: "INTERNAL",
          message: "gone",
          service: "billing",
          consumer: "billing__gone",
          deliveries: 5,
          subject: `${prefix}.evt.${event}`,
          seq,
          eventId: undefined,
        }),
      });
    }
    await until("order.retried failed twice", () => failures === 2);
    const url = `http://127.0.0.1:${registry.httpPort}/metrics`;
    const group = (pattern: string) => `{service="billing",pattern="${pattern}"}`;
    const scrape = async () => parseMetrics(await (await fetch(url)).text());
    await expect
      .poll(scrape, { timeout: 15_000 })
      .toSatisfy(
        (m: Map<string, number>) =>
          m.get(`natsmesh_events_in_flight${group("order.created")}`) === 1 &&
          m.get(`natsmesh_events_pending${group("order.created")}`) === 2 &&
          m.get(`natsmesh_events_redelivered${group("order.retried")}`) === 1 &&
          m.get(`natsmesh_events_dead_letters${group("order.refused")}`) === 2 &&
          m.get('natsmesh_events_dead_letters{service="billing"}') === 2,
      );
    const m = await scrape();
    expect(m.get(`natsmesh_events_redelivered${group("order.created")}`)).toBe(0);
    expect(m.get(`natsmesh_events_in_flight${group("order.retried")}`)).toBe(1);
    expect(m.get(`natsmesh_events_pending${group("order.retried")}`)).toBe(0);
    expect(m.get(`natsmesh_events_dead_letters${group("order.created")}`)).toBe(0);
    expect(m.get(`natsmesh_events_dead_letters${group("order.retried")}`)).toBe(0);
    expect(m.get(`natsmesh_events_dead_letters${group("audit.*")}`)).toBe(0);
    expect(m.get(`natsmesh_events_dead_letters${group("audit.>")}`)).toBe(0);
    const letters = [...m].filter(([k]) => k.startsWith("natsmesh_events_dead_letters{"));
    expect(letters.reduce((sum, [, n]) => sum + n, 0)).toBe(4);
    release();
  }, 30_000);

  it("serves /healthz, /v1/services and /metrics, and refuses the rest", async () => {
    const prefix = uniquePrefix("h");
    await using registry = await startRegistry({
      servers: t.server.url,
      prefix,
      leaseMs: 1000,
      http: { port: 0 },
    });
    const base = `http://127.0.0.1:${registry.httpPort}`;
    expect(registry.httpPort).toBeGreaterThan(0);
    const agents = await Promise.all(
      ["a", "a", "b"].map((service) =>
        startAgent({
          connection: t.nc,
          prefix,
          service,
          heartbeatMs: 100,
          methods: { m: () => 1 },
        }),
      ),
    );
    await expect.poll(() => registry.instances().length).toBe(3);
    t.nc.publish(`${prefix}.presence.a.X`, "garbage");
    await expect.poll(() => registry.stats.invalid).toBe(1);

    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok", leader: true });

    const services = await fetch(`${base}/v1/services`);
    expect(services.headers.get("content-type")).toMatch(/^application\/json/);
    const body = (await services.json()) as { services: Record<string, { id: string }[]> };
    expect(Object.keys(body.services).sort()).toEqual(["a", "b"]);
    expect(body.services.a!.map((r) => r.id).sort()).toEqual(
      agents
        .slice(0, 2)
        .map((a) => a.id)
        .sort(),
    );
    expect(body.services.b).toEqual([agents[2]!.record]);

    const metrics = await fetch(`${base}/metrics?x=1`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get("content-type")).toMatch(/^text\/plain/);
    const m = parseMetrics(await metrics.text());
    expect(m.get('natsmesh_registry_instances{service="a",status="ready"}')).toBe(2);
    expect(m.get('natsmesh_registry_instances{service="b",status="ready"}')).toBe(1);
    expect(m.get("natsmesh_registry_announcements_total")).toBeGreaterThanOrEqual(3);
    expect(m.get("natsmesh_registry_heartbeats_total")).toBeGreaterThanOrEqual(0);
    expect(m.get("natsmesh_registry_evictions_total")).toBe(0);
    expect(m.get("natsmesh_registry_invalid_messages_total")).toBe(1);
    expect(m.get("natsmesh_registry_kv_writes_total")).toBe(3);
    expect(m.get("natsmesh_registry_leader")).toBe(1);
    expect(m.get('natsmesh_registry_lease_changes_total{change="acquired"}')).toBe(1);
    expect(m.get('natsmesh_registry_lease_changes_total{change="lost"}')).toBe(0);

    expect((await fetch(`${base}/nope`)).status).toBe(404);
    // The dashboard lives at /dashboard/, and / leads there; it sees the registry's instances.
    const root = await fetch(`${base}/`, { redirect: "manual" });
    expect(root.status).toBe(302);
    expect(root.headers.get("location")).toBe("/dashboard/");
    const page = await fetch(`${base}/dashboard/`);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    const state = (await (await fetch(`${base}/dashboard/state`)).json()) as {
      prefix: string;
      instances: { id: string }[];
    };
    expect(state.prefix).toBe(prefix);
    expect(state.instances.map((r) => r.id).sort()).toEqual(agents.map((a) => a.id).sort());
    const post = await fetch(`${base}/healthz`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    expect((await fetch(`${base}/metrics`, { method: "HEAD" })).status).toBe(200);

    // A draining instance moves to its own series; once gone, its service's count drops to 0
    // rather than repeating the last value.
    await agents[2]!.update({ status: "draining" });
    await expect
      .poll(() => registry.instances().find((r) => r.service === "b")?.status)
      .toBe("draining");
    const draining = parseMetrics(await (await fetch(`${base}/metrics`)).text());
    expect(draining.get('natsmesh_registry_instances{service="b",status="draining"}')).toBe(1);
    expect(draining.get('natsmesh_registry_instances{service="b",status="ready"}')).toBe(0);
    await agents[2]!.stop();
    await expect.poll(() => registry.instances().length).toBe(2);
    const gone = parseMetrics(await (await fetch(`${base}/metrics`)).text());
    expect(gone.get('natsmesh_registry_instances{service="b",status="draining"}')).toBe(0);
    expect(gone.get('natsmesh_registry_instances{service="a",status="ready"}')).toBe(2);

    await Promise.all(agents.map((a) => a.stop()));
    await registry.stop();
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });

  it("serves no dashboard with dashboard: false", async () => {
    await using registry = await startRegistry({
      servers: t.server.url,
      prefix: uniquePrefix("h"),
      http: { port: 0, dashboard: false },
    });
    const base = `http://127.0.0.1:${registry.httpPort}`;
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/dashboard/`)).status).toBe(404);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it("refuses bad dashboard options before connecting", async () => {
    await expect(
      startRegistry({ servers: "nats://127.0.0.1:1", http: { port: 0, dashboard: { pollMs: 5 } } }),
    ).rejects.toThrow(TypeError);
  });

  it("fails to start when the port is taken, releasing everything it took", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as AddressInfo).port;
    const prefix = uniquePrefix("h");
    try {
      const err = await startRegistry({ servers: t.server.url, prefix, http: { port } }).catch(
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: "EADDRINUSE" });
      // Its lease was released on the way out: the next registry leads at once.
      await using next = await startRegistry({ servers: t.server.url, prefix, leaseMs: 60_000 });
      expect(next.isLeader).toBe(true);
    } finally {
      taken.close();
    }
  });

  it("answers 503 on /healthz while NATS is unreachable", async () => {
    // A server of its own, stopped mid-test; disposed of after the registry.
    await using own = await startNatsServer();
    await using registry = await startRegistry({
      servers: own.url,
      prefix: uniquePrefix("h"),
      leaseMs: 1000,
      http: { port: 0 },
    });
    const health = () => fetch(`http://127.0.0.1:${registry.httpPort}/healthz`);
    await own.stop();
    await expect.poll(async () => (await health()).status, { timeout: 10_000 }).toBe(503);
    expect(await (await health()).json()).toEqual({ status: "disconnected", leader: false });
  });
});
