import { type Agent, type EventContext, type RequestContext, startAgent } from "@natsmesh/agent";
import { Header } from "@natsmesh/protocol";
import { parseTraceparent } from "@natsmesh/protocol/internal";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup, until } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// ctx.mesh of an event handler, without a tracer: nested calls and emits carry the event's
// traceparent and tracestate (as a call handler's do) and the handler's signal, and no deadline
// of the event's.

const TIMEOUT_MS = 4000;

let t: TestSetup;
let mesh: Mesh;
const agents: Agent[] = [];
/** What `seen.context` received, by its `cause` header. */
const nested = new Map<string, { headers: Record<string, string>; deadline: number }>();
const handled = new Map<
  string,
  { traceparent: string; tracestate?: string | undefined; typeError?: boolean }
>();

beforeAll(async () => {
  t = await setup({ tag: "evn" });
  mesh = await connectMesh({ servers: t.server.url, prefix: t.prefix, timeoutMs: TIMEOUT_MS });
  const record = (_p: unknown, ctx: RequestContext) =>
    void nested.set(ctx.headers.cause ?? "", {
      headers: { ...ctx.headers },
      deadline: ctx.deadline,
    });
  agents.push(
    await startAgent({
      servers: t.server.url,
      prefix: t.prefix,
      service: "seen",
      methods: { context: record },
      events: {
        "nested.emitted": {
          mode: "broadcast",
          handler: (_p, ctx: EventContext) =>
            void handled.set("emitted", {
              traceparent: ctx.traceparent,
              tracestate: ctx.headers[Header.TraceState],
            }),
        },
      },
    }),
    await startAgent({
      servers: t.server.url,
      prefix: t.prefix,
      service: "reactor",
      mesh,
      events: {
        "nested.call": {
          mode: "broadcast",
          handler: async (_p, ctx: EventContext) => {
            handled.set("call", { traceparent: ctx.traceparent });
            await ctx.mesh.request("seen", "context", null, { headers: { cause: "call" } });
            await ctx.mesh.emit?.("nested.emitted", {});
          },
        },
        // Durable: read from the stream's message, not a core one.
        "nested.durable": async (_p, ctx: EventContext) => {
          await ctx.mesh.request("seen", "context", null, { headers: { cause: "durable" } });
        },
      },
    }),
    await startAgent({
      servers: t.server.url,
      prefix: t.prefix,
      service: "lonely",
      events: {
        "nested.nomesh": {
          mode: "broadcast",
          handler: (_p, ctx: EventContext) => {
            try {
              void ctx.mesh;
              handled.set("nomesh", { traceparent: ctx.traceparent });
            } catch (err) {
              handled.set("nomesh", {
                traceparent: ctx.traceparent,
                typeError: err instanceof TypeError,
              });
            }
          },
        },
      },
    }),
  );
});

afterAll(() => cleanup(t, ...agents, mesh));

const traceId = (traceparent: string | undefined) => parseTraceparent(traceparent)?.traceId;

describe("ctx.mesh of an event handler", () => {
  it("carries the event's traceparent and tracestate, and the mesh's own deadline", async () => {
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const sent = Date.now();
    mesh.broadcast("nested.call", {}, { headers: { traceparent, tracestate: "vendor=abc" } });
    await until(
      "the nested call and the nested emit",
      () => nested.has("call") && handled.has("emitted"),
    );
    // The SDK sends children of the traceparents it is given: the same trace throughout.
    expect(traceId(handled.get("call")?.traceparent)).toBe(traceId(traceparent));
    const inner = nested.get("call")!;
    expect(traceId(inner.headers[Header.TraceParent])).toBe(traceId(traceparent));
    expect(inner.headers[Header.TraceState]).toBe("vendor=abc");
    // The mesh's timeout, not a deadline of the event's.
    expect(inner.deadline).toBeGreaterThanOrEqual(sent + TIMEOUT_MS);
    expect(inner.deadline).toBeLessThanOrEqual(Date.now() + TIMEOUT_MS);
    expect(traceId(handled.get("emitted")?.traceparent)).toBe(traceId(traceparent));
    expect(handled.get("emitted")?.tracestate).toBe("vendor=abc");
  });

  it("carries a durable event's tracestate into nested calls", async () => {
    const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    await mesh.emit("nested.durable", {}, { headers: { traceparent, tracestate: "vendor=dur" } });
    await until("the durable event's nested call", () => nested.has("durable"));
    const inner = nested.get("durable")!;
    expect(traceId(inner.headers[Header.TraceParent])).toBe(traceId(traceparent));
    expect(inner.headers[Header.TraceState]).toBe("vendor=dur");
  });

  it("starts a new trace for an event without a valid traceparent, and nested calls join it", async () => {
    nested.delete("call");
    handled.delete("emitted");
    mesh.broadcast("nested.call", {}, { headers: { traceparent: "00-zzzz-bad" } });
    await until(
      "the nested call and the nested emit",
      () => nested.has("call") && handled.has("emitted"),
    );
    const own = handled.get("call")!.traceparent;
    expect(own).not.toBe("00-zzzz-bad");
    expect(parseTraceparent(own)).toBeDefined();
    expect(traceId(nested.get("call")!.headers[Header.TraceParent])).toBe(traceId(own));
    expect(traceId(handled.get("emitted")?.traceparent)).toBe(traceId(own));
  });

  it("throws a TypeError from ctx.mesh when the agent has no mesh", async () => {
    mesh.broadcast("nested.nomesh", {});
    await until("the nomesh event", () => handled.has("nomesh"));
    expect(handled.get("nomesh")?.typeError).toBe(true);
  });
});
