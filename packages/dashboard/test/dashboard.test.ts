import { request as httpRequest } from "node:http";
import { connect as tcpConnect } from "node:net";
import { type Agent, MeshError, startAgent } from "@natsmesh/agent";
import { generateKeyPair, type InstanceRecord, issueToken, presenceKey } from "@natsmesh/protocol";
import {
  cleanup,
  instanceRecord,
  setup,
  type TestSetup,
  uniquePrefix,
  waitUntil,
} from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type DashboardServer,
  type DashboardState,
  PresenceFeed,
  type StatsEvent,
  serveDashboard,
} from "../src/index.js";
import { type EventStream, openEvents } from "./sse-client.js";

let t: TestSetup;
beforeAll(async () => {
  t = await setup({ tag: "dash" });
});
afterAll(() => cleanup(t));

function record(service: string, id: string, extra: Partial<InstanceRecord> = {}): InstanceRecord {
  return instanceRecord("x", service, { id, methods: ["m"], ...extra });
}

/** Raw GET (or another method) with chosen headers; fetch() would not send a forged Host. */
function raw(
  port: number,
  path: string,
  { method = "GET", host = `127.0.0.1:${port}` } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path, method, headers: { host } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("dashboard server", () => {
  let feed: PresenceFeed;
  let server: DashboardServer;
  const agents: Agent[] = [];
  let events: EventStream | undefined;

  beforeAll(async () => {
    feed = new PresenceFeed();
    server = await serveDashboard({
      connection: t.nc,
      presence: feed,
      prefix: t.prefix,
      pollMs: 200,
      maxClients: 3,
    });
  });
  afterAll(async () => {
    events?.close();
    await cleanup(server, ...agents);
  });

  it("refuses a port that is not an integer from 0 to 65535 with a TypeError", async () => {
    for (const port of [-1, 65_536, 1.5]) {
      await expect(
        serveDashboard({ connection: t.nc, presence: feed, prefix: t.prefix, port }),
      ).rejects.toBeInstanceOf(TypeError);
    }
  });

  it("serves the page on 127.0.0.1 with a strict CSP, and nothing else", async () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/dashboard/`);
    const page = await fetch(server.url);
    expect(page.status).toBe(200);
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await page.text()).toContain('<script type="module" src="app.js">');
    for (const asset of [
      "app.js",
      "render.js",
      "services.js",
      "charts.js",
      "dom.js",
      "format.js",
      "style.css",
      "favicon.svg",
    ]) {
      const res = await fetch(`${server.url}${asset}`);
      expect(res.status, asset).toBe(200);
      expect(res.headers.get("content-security-policy"), asset).toBe(csp);
    }
    expect((await raw(server.port, "/dashboard/..%2fpackage.json")).status).toBe(404);
    expect((await raw(server.port, "/dashboard/../package.json")).status).toBe(404);
    expect((await raw(server.port, "/other")).status).toBe(404);
    expect((await raw(server.port, "/dashboard/state", { method: "POST" })).status).toBe(405);
    expect((await raw(server.port, "/dashboard/state", { method: "HEAD" })).status).toBe(200);
  });

  it("answers only requests that name a loopback host (DNS rebinding)", async () => {
    expect((await raw(server.port, "/dashboard/state", { host: "evil.example:80" })).status).toBe(
      421,
    );
    expect(
      (await raw(server.port, "/dashboard/state", { host: "127.0.0.1.evil.example" })).status,
    ).toBe(421);
    expect(
      (await raw(server.port, "/dashboard/state", { host: `localhost:${server.port}` })).status,
    ).toBe(200);
    expect(
      (await raw(server.port, "/dashboard/state", { host: `[::1]:${server.port}` })).status,
    ).toBe(200);
  });

  it("streams the state first, then presence changes, with update details", async () => {
    feed.set(presenceKey("alpha", "a1"), record("alpha", "a1"));
    events = await openEvents(`${server.url}events`);
    expect(events.response.headers["content-type"]).toMatch(/^text\/event-stream/);
    const first = events.events[0] ?? (await events.find(() => true));
    expect(first.event).toBe("state");
    const state = first.data as DashboardState;
    expect(state).toMatchObject({
      v: 1,
      prefix: t.prefix,
      pollMs: 200,
      nats: { state: "connected" },
    });
    expect(state.instances.map((r) => r.id)).toEqual(["a1"]);
    expect(state.feed.map((e) => [e.type, e.instance.id])).toEqual([["up", "a1"]]);

    const lighter = record("alpha", "a1", { weight: 5 });
    feed.set(presenceKey("alpha", "a1"), lighter);
    feed.set(presenceKey("alpha", "a1"), { ...lighter }); // the same record again: no news
    feed.set(presenceKey("alpha", "a1"), undefined);
    const update = await events.find(
      (e) => e.event === "presence" && (e.data as { type: string }).type === "update",
    );
    expect(update.data).toMatchObject({ instance: { weight: 5 }, previous: { weight: 100 } });
    await events.find(
      (e) => e.event === "presence" && (e.data as { type: string }).type === "down",
    );
    expect(events.events.filter((e) => e.event === "presence")).toHaveLength(2);
  });

  it("polls $SRV.STATS while a page is open and streams rates, errors and latency", async () => {
    const service = uniquePrefix("svc");
    const agent = await startAgent({
      connection: t.nc,
      prefix: t.prefix,
      service,
      methods: {
        m: (n: number) => {
          if (n % 4 === 0) throw new MeshError("NOPE", "no");
          return n;
        },
      },
    });
    agents.push(agent);
    feed.set(presenceKey(service, agent.id), agent.record);
    const rated = (e: { event: string; data: unknown }) =>
      e.event === "stats" && ((e.data as StatsEvent).services[service]?.point.rps ?? 0) > 0;
    const load = (async () => {
      for (let i = 0; i < 2000 && !events!.events.some(rated); i++) {
        await t.nc.request(`${t.prefix}.svc.${service}.m`, JSON.stringify(i), { timeout: 2000 });
      }
    })();
    const stats = (await events!.find(rated, 20_000)).data as StatsEvent;
    await load;
    const s = stats.services[service]!;
    expect(s.stats).toBe("ok");
    expect(s.point.reporting).toBe(1);
    expect(s.point.errorRate).toBeGreaterThan(0.1);
    expect(s.point.errorRate).toBeLessThan(0.5);
    expect(s.point.p50Ms).toBeGreaterThan(0);
    expect(s.point.p99Ms).toBeGreaterThanOrEqual(s.point.p50Ms!);
    expect(Object.keys(s.point.errors)).toEqual(["NOPE"]);
    expect(s.instances[agent.id]?.rps).toBeGreaterThan(0);
    // A new page starts with the history.
    const state = (await (await fetch(`${server.url}state`)).json()) as DashboardState;
    expect(state.services[service]?.points.length).toBeGreaterThan(0);
  });

  it("refuses pages beyond maxClients with 503", async () => {
    const more = [await openEvents(`${server.url}events`), await openEvents(`${server.url}events`)];
    try {
      const over = await openEvents(`${server.url}events`);
      expect(over.response.statusCode).toBe(503);
      over.close();
    } finally {
      for (const e of more) e.close();
    }
  });

  it("disconnects a page that stops reading instead of buffering for it", async () => {
    const socket = tcpConnect(server.port, "127.0.0.1");
    let closed = false;
    socket.on("close", () => (closed = true));
    socket.on("error", () => undefined);
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.write(`GET /dashboard/events HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n\r\n`);
    socket.pause(); // reads nothing more: the kernel buffers fill, then the server's.
    // The server has taken the page on once its first bytes are here.
    expect(await waitUntil(() => socket.readableLength > 0, { timeoutMs: 5000 })).toBe(true);
    const big = Object.fromEntries(
      Array.from({ length: 32 }, (_, i) => [`k${i}`, "v".repeat(250)]),
    );
    // 2000 changes of ~9 KB (18 MB, far more than socket buffers and the 1 MiB allowance), 10
    // per turn of the event loop, so a page that reads keeps up.
    for (let i = 0; i < 2000; i++) {
      feed.set("slow.x", record("slow", "x", { metadata: { ...big, n: String(i) } }));
      if (i % 10 === 9) await new Promise((resolve) => setImmediate(resolve));
    }
    feed.set("slow.x", undefined);
    // Reading again, the page gets what was buffered and then the end of the stream, because
    // the server let it go; a server that buffered everything would still be sending.
    socket.resume();
    const gone = await waitUntil(() => closed, { timeoutMs: 15_000 });
    socket.destroy();
    expect(gone).toBe(true);
    // The other page is still served.
    expect(events!.response.destroyed).toBe(false);
  });
});

describe("dashboard with agents that check tokens", () => {
  it("gets stats with a stats:* token, and says why without one", async () => {
    const keys = await generateKeyPair();
    const service = uniquePrefix("sec");
    const agent = await startAgent({
      connection: t.nc,
      prefix: t.prefix,
      service,
      auth: { jwks: keys.jwks },
      methods: { m: () => 1 },
    });
    const feed = new PresenceFeed();
    feed.set(presenceKey(service, agent.id), agent.record);
    const token = await issueToken({ key: keys.privateJwk, sub: "dash", scope: "stats:*" });
    const callOnly = await issueToken({ key: keys.privateJwk, sub: "dash", scope: "*" });
    const servers = await Promise.all(
      [undefined, callOnly, token].map((tok) =>
        serveDashboard({
          connection: t.nc,
          presence: feed,
          prefix: t.prefix,
          pollMs: 200,
          ...(tok === undefined ? {} : { token: tok }),
        }),
      ),
    );
    const streams: EventStream[] = [];
    try {
      for (const s of servers) streams.push(await openEvents(`${s.url}events`));
      const statsOf = async (stream: EventStream) => {
        const e = await stream.find((x) => x.event === "stats");
        return (e.data as StatsEvent).services[service]?.stats;
      };
      expect(await Promise.all(streams.map(statsOf))).toEqual([
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "ok",
      ]);
    } finally {
      for (const s of streams) s.close();
      await cleanup(agent, ...servers);
    }
  });
});
