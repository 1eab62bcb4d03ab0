import { type Agent, MeshError, startAgent } from "@natsmesh/agent";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup } from "@natsmesh/testing";
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from "@opentelemetry/core";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// What a user's OpenTelemetry setup registers: a tracer provider, a context manager and the
// W3C propagators. natsmesh only uses @opentelemetry/api.
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager().enable();
context.setGlobalContextManager(contextManager);
propagation.setGlobalPropagator(
  new CompositePropagator({
    propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
  }),
);
trace.setGlobalTracerProvider(provider);
const tracer = trace.getTracer("test");

let t: TestSetup;
let front: Agent;
let back: Agent;
let mesh: Mesh;
let nested: Mesh;
/** What back's handlers saw as the active context: baggage and span. */
const seen: { baggage?: string; eventBaggage?: string; eventTraceparent?: string } = {};
let eventHandled: () => void = () => {};

beforeAll(async () => {
  t = await setup({ jetstream: true });
  nested = await connectMesh({ servers: t.server.url, prefix: t.prefix });
  back = await startAgent({
    servers: t.server.url,
    prefix: t.prefix,
    service: "back",
    methods: {
      charge: (n: number) => {
        seen.baggage = propagation.getBaggage(context.active())?.getEntry("tenant")?.value;
        return n + 1;
      },
      busy: () => {
        throw new MeshError("OVERLOADED", "try another");
      },
    },
    events: {
      "order.placed": (_payload, ctx) => {
        seen.eventBaggage = propagation.getBaggage(context.active())?.getEntry("tenant")?.value;
        seen.eventTraceparent = ctx.traceparent;
        eventHandled();
      },
    },
  });
  front = await startAgent({
    servers: t.server.url,
    prefix: t.prefix,
    service: "front",
    mesh: nested,
    methods: {
      checkout: async (n: number, ctx) =>
        // The handler's own span: nested work made inside it is its child.
        tracer.startActiveSpan("compute", async (span) => {
          try {
            const charged = await ctx.mesh.request<number>("back", "charge", n);
            await ctx.mesh.emit?.("order.placed", { n });
            return charged;
          } finally {
            span.end();
          }
        }),
    },
  });
  mesh = await connectMesh({ servers: t.server.url, prefix: t.prefix, retries: 1 });
});

afterAll(async () => {
  await cleanup(t, mesh, front, back, nested);
  await provider.shutdown();
  contextManager.disable();
});

function byName(spans: ReadableSpan[], name: string, kind?: SpanKind): ReadableSpan {
  const found = spans.filter((s) => s.name === name && (kind === undefined || s.kind === kind));
  expect(found, `${name} ${kind}`).toHaveLength(1);
  return found[0]!;
}

function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

describe("traces over NATS headers", () => {
  it("joins client, servers, a handler's own span, a nested call and an event into one trace", async () => {
    exporter.reset();
    const handled = new Promise<void>((resolve) => {
      eventHandled = resolve;
    });
    const baggage = propagation.createBaggage({ tenant: { value: "acme" } });
    const result = await context.with(propagation.setBaggage(context.active(), baggage), () =>
      tracer.startActiveSpan("user-request", async (root) => {
        try {
          return await mesh.request<number>("front", "checkout", 41);
        } finally {
          root.end();
        }
      }),
    );
    expect(result).toBe(42);
    await handled;
    await expect.poll(() => exporter.getFinishedSpans().length).toBe(8);
    const spans = exporter.getFinishedSpans();

    const root = byName(spans, "user-request");
    const client = byName(spans, "front/checkout", SpanKind.CLIENT);
    const server = byName(spans, "front/checkout", SpanKind.SERVER);
    const compute = byName(spans, "compute");
    const nestedClient = byName(spans, "back/charge", SpanKind.CLIENT);
    const nestedServer = byName(spans, "back/charge", SpanKind.SERVER);
    const producer = byName(spans, "send order.placed", SpanKind.PRODUCER);
    const consumer = byName(spans, "process order.placed", SpanKind.CONSUMER);

    // One trace from the caller's span to the event handler.
    const traceId = root.spanContext().traceId;
    for (const s of spans) expect(s.spanContext().traceId).toBe(traceId);
    expect(parentOf(client)).toBe(root.spanContext().spanId);
    expect(parentOf(server)).toBe(client.spanContext().spanId);
    expect(server.parentSpanContext?.isRemote).toBe(true);
    expect(parentOf(compute)).toBe(server.spanContext().spanId);
    expect(parentOf(nestedClient)).toBe(compute.spanContext().spanId);
    expect(parentOf(nestedServer)).toBe(nestedClient.spanContext().spanId);
    expect(parentOf(producer)).toBe(compute.spanContext().spanId);
    expect(parentOf(consumer)).toBe(producer.spanContext().spanId);

    expect(client.attributes).toMatchObject({
      "rpc.system.name": "natsmesh",
      "rpc.method": "front/checkout",
      "rpc.response.status_code": "OK",
      "natsmesh.attempt": 1,
    });
    expect(server.attributes["rpc.method"]).toBe("front/checkout");
    expect(consumer.attributes).toMatchObject({
      "natsmesh.event.name": "order.placed",
      "natsmesh.event.mode": "durable",
      "natsmesh.service": "back",
    });
    // Baggage travels with the trace context, through the nested call and the event.
    expect(seen.baggage).toBe("acme");
    expect(seen.eventBaggage).toBe("acme");
    // The handler's traceparent is its own span's, as logs should show it.
    expect(seen.eventTraceparent).toBe(`00-${traceId}-${consumer.spanContext().spanId}-01`);
  });

  it("makes a client span per attempt, each failed one marked with its error", async () => {
    exporter.reset();
    await expect(mesh.request("back", "busy")).rejects.toMatchObject({ code: "OVERLOADED" });
    const spans = exporter.getFinishedSpans();
    const clients = spans.filter((s) => s.kind === SpanKind.CLIENT);
    const servers = spans.filter((s) => s.kind === SpanKind.SERVER);
    expect(clients.map((s) => s.attributes["natsmesh.attempt"]).sort()).toEqual([1, 2]);
    for (const c of clients) {
      expect(c.status.code).toBe(SpanStatusCode.ERROR);
      expect(c.attributes["error.type"]).toBe("OVERLOADED");
    }
    expect(servers).toHaveLength(2);
    expect(servers.map(parentOf).sort()).toEqual(clients.map((c) => c.spanContext().spanId).sort());
    expect(servers[0]!.status.code).toBe(SpanStatusCode.ERROR);
  });

  it("continues a traceparent the caller passes in headers", async () => {
    exporter.reset();
    const traceId = "0af7651916cd43dd8448eb211c80319c";
    await mesh.request("back", "charge", 1, {
      headers: { traceparent: `00-${traceId}-b7ad6b7169203331-01` },
    });
    const client = byName(exporter.getFinishedSpans(), "back/charge", SpanKind.CLIENT);
    expect(client.spanContext().traceId).toBe(traceId);
    expect(parentOf(client)).toBe("b7ad6b7169203331");
  });
});
