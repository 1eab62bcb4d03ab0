import { Kvm } from "@nats-io/kv";
import { type Agent, MeshError, natsmeshMetricProducer, startAgent } from "@natsmesh/agent";
import { presenceBucket, presenceKey } from "@natsmesh/protocol";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup } from "@natsmesh/testing";
import {
  type DataPoint,
  type Histogram,
  MeterProvider,
  MetricReader,
} from "@opentelemetry/sdk-metrics";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/** A reader the test collects from when it wants to: what any exporter would be handed. */
class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}

  /** The data points of metric `name`, from every scope. */
  async points<T = number>(name: string): Promise<DataPoint<T>[]> {
    const { resourceMetrics, errors } = await this.collect();
    expect(errors).toEqual([]);
    const out: DataPoint<T>[] = [];
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        if (metric.descriptor.name === name) out.push(...(metric.dataPoints as DataPoint<T>[]));
      }
    }
    return out;
  }

  /** The one data point of `name` whose attributes include `attrs`; fails when not exactly one. */
  async point<T = number>(
    name: string,
    attrs: Record<string, string | undefined>,
  ): Promise<DataPoint<T>> {
    const found = (await this.points<T>(name)).filter((p) =>
      Object.entries(attrs).every(([k, v]) => p.attributes[k] === v),
    );
    expect(found, `${name} ${JSON.stringify(attrs)}`).toHaveLength(1);
    return found[0]!;
  }

  async unit(name: string): Promise<string | undefined> {
    const { resourceMetrics } = await this.collect();
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const m of scope.metrics) if (m.descriptor.name === name) return m.descriptor.unit;
    }
    return undefined;
  }
}

function gate() {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, wait };
}

let t: TestSetup;
let agent: Agent;
let mesh: Mesh;
// One reader sees the agent's and the client's metrics, as a user's would.
const agentReader = new TestReader({ metricProducers: [natsmeshMetricProducer()] });
const clientReader = agentReader;
const meters = new MeterProvider({ readers: [agentReader] });
let held: ReturnType<typeof gate> | undefined;

beforeAll(async () => {
  t = await setup({ jetstream: true });
  agent = await startAgent({
    servers: t.server.url,
    prefix: t.prefix,
    service: "shop",
    concurrency: 1,
    methods: {
      buy: (n: number) => n * 2,
      refuse: () => {
        throw new MeshError("INSUFFICIENT_FUNDS", "no money", { status: 409 });
      },
      hold: async () => {
        await held?.wait;
        return "done";
      },
    },
    events: {
      "order.*": (payload: { fail?: boolean }) => {
        if (payload.fail) throw new MeshError("REJECTED_ORDER", "not this one");
      },
      "flaky.*": {
        backoffMs: [50],
        handler: (_payload, ctx) => {
          // A plain error may pass: the event comes back, and the second delivery succeeds.
          if (ctx.event.deliveries === 1) throw new Error("try again");
        },
      },
    },
  });
  mesh = await connectMesh({
    servers: t.server.url,
    prefix: t.prefix,
    retries: 0,
  });
});

afterAll(async () => {
  await cleanup(t, mesh, agent);
  await meters.shutdown();
});

describe("metrics through natsmeshMetricProducer()", () => {
  it("records every call's duration per method and outcome, on both sides, in seconds", async () => {
    const started = performance.now();
    for (let i = 0; i < 3; i++) await mesh.request("shop", "buy", i);
    await expect(mesh.request("shop", "refuse")).rejects.toMatchObject({
      code: "INSUFFICIENT_FUNDS",
    });
    await expect(mesh.request("shop", "nope")).rejects.toMatchObject({ code: "NOT_FOUND" });
    const elapsedS = (performance.now() - started) / 1000;

    const server = "rpc.server.call.duration";
    expect(await agentReader.unit(server)).toBe("s");
    const ok = await agentReader.point<Histogram>(server, {
      "rpc.system.name": "natsmesh",
      "rpc.method": "shop/buy",
      "rpc.response.status_code": "OK",
    });
    expect(ok.value.count).toBe(3);
    expect(ok.value.sum).toBeGreaterThan(0);
    expect(ok.value.sum).toBeLessThan(elapsedS);
    expect(ok.attributes["error.type"]).toBeUndefined();
    const refused = await agentReader.point<Histogram>(server, { "rpc.method": "shop/refuse" });
    expect(refused.value.count).toBe(1);
    expect(refused.attributes).toMatchObject({
      "error.type": "INSUFFICIENT_FUNDS",
      "rpc.response.status_code": "INSUFFICIENT_FUNDS",
    });
    // A method the agent does not have is not a series of its own (a caller could make many).
    const other = await agentReader.point<Histogram>(server, { "rpc.method": "_OTHER" });
    expect(other.attributes["error.type"]).toBe("NOT_FOUND");

    const client = "rpc.client.call.duration";
    expect(await clientReader.unit(client)).toBe("s");
    const sent = await clientReader.point<Histogram>(client, {
      "rpc.method": "shop/buy",
      "rpc.response.status_code": "OK",
    });
    expect(sent.value.count).toBe(3);
    // The client's time holds the agent's, plus the network.
    expect(sent.value.sum).toBeGreaterThan(ok.value.sum ?? Number.POSITIVE_INFINITY);
    const failed = await clientReader.point<Histogram>(client, { "rpc.method": "shop/nope" });
    expect(failed.attributes["error.type"]).toBe("NOT_FOUND");
    expect(failed.value.count).toBe(1);
  });

  it("reads calls in flight, and counts refusals and retries", async () => {
    held = gate();
    const holding = mesh.request("shop", "hold");
    await expect.poll(() => agent.stats().inflight).toBe(1);
    expect((await agentReader.point("natsmesh.server.inflight", {})).value).toBe(1);
    expect((await clientReader.point("natsmesh.client.inflight", {})).value).toBe(1);

    // concurrency 1 is taken: refused OVERLOADED, retried twice, refused each time.
    await expect(mesh.request("shop", "buy", 1, { retries: 2 })).rejects.toMatchObject({
      code: "OVERLOADED",
    });
    held.open();
    await holding;

    const rejected = await agentReader.point("natsmesh.server.rejections", {
      "natsmesh.service": "shop",
      "natsmesh.reason": "concurrency",
    });
    expect(rejected.value).toBe(3);
    expect(agent.stats().rejectedConcurrency).toBe(3);
    const retries = await clientReader.point("natsmesh.client.retries", {
      "rpc.method": "shop/buy",
    });
    expect(retries.attributes["error.type"]).toBe("OVERLOADED");
    expect(retries.value).toBe(2);
    expect((await agentReader.point("natsmesh.server.inflight", {})).value).toBe(0);
    expect((await clientReader.point("natsmesh.client.inflight", {})).value).toBe(0);
  });

  it("counts a failover when the chosen instance has gone", async () => {
    // Presence names an instance that does not exist (no registry runs here): the call gets
    // "no responders" from it, moves on and is answered through the queue subject.
    const kv = await new Kvm(t.nc).create(presenceBucket(t.prefix), { history: 1 });
    const ghost = {
      ...agent.record,
      id: "ghost",
      status: "ready",
      subject: `${t.prefix}.inst.shop.ghost`,
    };
    await kv.put(presenceKey("shop", "ghost"), JSON.stringify(ghost));
    await expect.poll(() => mesh.instances("shop").length).toBe(1);

    expect(await mesh.request("shop", "buy", 4, { balance: "random" })).toBe(8);
    const failovers = await clientReader.point("natsmesh.client.failovers", {
      "rpc.method": "shop/buy",
    });
    expect(failovers.value).toBe(1);
  });

  it("counts events published, handled, redelivered and dead-lettered", async () => {
    await mesh.emit("order.created", { fail: false });
    await mesh.emit("order.bad", { fail: true });
    mesh.broadcast("cache.flush", {});
    const pattern = { "natsmesh.event.pattern": "order.*", "natsmesh.service": "shop" };
    await expect
      .poll(async () => (await agentReader.points("natsmesh.events.dead_lettered")).length, {
        timeout: 20_000,
      })
      .toBe(1);

    const handled = await agentReader.point("natsmesh.events.handled", {
      ...pattern,
      "natsmesh.event.mode": "durable",
      "error.type": undefined,
    });
    expect(handled.value).toBe(1);
    // The handler's own code is not retryable: handled once, failed, dead-lettered at once.
    const failed = await agentReader.point("natsmesh.events.handled", {
      ...pattern,
      "error.type": "REJECTED_ORDER",
    });
    expect(failed.value).toBe(1);
    const dead = await agentReader.point("natsmesh.events.dead_lettered", pattern);
    expect(dead.attributes["error.type"]).toBe("REJECTED_ORDER");
    expect(dead.value).toBe(1);
    expect(await agentReader.points("natsmesh.events.redelivered")).toEqual([]);

    await mesh.emit("flaky.one", {});
    const flaky = { "natsmesh.event.pattern": "flaky.*" };
    await expect
      .poll(async () => (await agentReader.points("natsmesh.events.redelivered")).length, {
        timeout: 20_000,
      })
      .toBe(1);
    await expect
      .poll(async () => (await agentReader.points("natsmesh.events.handled")).length)
      .toBe(4);
    expect((await agentReader.point("natsmesh.events.redelivered", flaky)).value).toBe(1);
    const flakyFailed = await agentReader.point("natsmesh.events.handled", {
      ...flaky,
      "error.type": "Error",
    });
    expect(flakyFailed.value).toBe(1);
    const flakyOk = await agentReader.point("natsmesh.events.handled", {
      ...flaky,
      "error.type": undefined,
    });
    expect(flakyOk.value).toBe(1);

    const published = await clientReader.points("natsmesh.events.published");
    const byName = Object.fromEntries(
      published.map((p) => [
        `${p.attributes["natsmesh.event.mode"]} ${p.attributes["natsmesh.event.name"]}`,
        p.value,
      ]),
    );
    expect(byName).toEqual({
      "durable order.created": 1,
      "durable order.bad": 1,
      "broadcast cache.flush": 1,
      "durable flaky.one": 1,
    });
  });
});
