import { setTimeout as sleep } from "node:timers/promises";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { type Agent, MeshError, type RequestContext, startAgent } from "@natsmesh/agent";
import { Header, isMeshError, subjects } from "@natsmesh/protocol";
import { parseTraceparent } from "@natsmesh/protocol/internal";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import { cleanup, type NatsServer, startNatsServer, uniquePrefix } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let server: NatsServer;
let mesh: Mesh;
const agents: Agent[] = [];
const prefix = uniquePrefix("rr");
const seen: { ctx: Record<string, unknown>; aborted?: unknown }[] = [];
let idemCalls: { attempt: number; key: string | undefined }[] = [];

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (isMeshError(err)) return err.code;
    throw err;
  }
  throw new Error("call succeeded");
}

beforeAll(async () => {
  server = await startNatsServer({ maxPayload: 256 * 1024 });
  mesh = await connectMesh({ servers: server.url, prefix, timeoutMs: 5000 });
  agents.push(
    await startAgent({
      servers: server.url,
      prefix,
      service: "echo",
      concurrency: 4,
      mesh,
      methods: {
        say: (p) => p,
        context: (_p, ctx: RequestContext) => ({
          deadline: ctx.deadline,
          attempt: ctx.attempt,
          traceparent: ctx.traceparent,
          headers: ctx.headers,
          instance: ctx.instance.id,
          method: ctx.method,
          service: ctx.service,
        }),
        slow: async (ms: number, ctx: RequestContext) => {
          const record = {
            ctx: { deadline: ctx.deadline } as Record<string, unknown>,
            aborted: undefined as unknown,
          };
          seen.push(record);
          // Works for `ms`, or until the agent aborts the call.
          await sleep(ms, undefined, { signal: ctx.signal }).catch(() => {});
          record.aborted = ctx.signal.aborted ? ctx.signal.reason : false;
          return "slow done";
        },
        idem: async (ms: number, ctx: RequestContext) => {
          idemCalls.push({ attempt: ctx.attempt, key: ctx.headers[Header.IdempotencyKey] });
          if (ctx.attempt === 1) await sleep(ms);
          return ctx.attempt;
        },
        custom: () => {
          throw new MeshError("INSUFFICIENT_FUNDS", "balance too low", {
            status: 409,
            data: { balance: 3 },
          });
        },
        forbidden: () => {
          throw new MeshError("FORBIDDEN", "no");
        },
        crash: () => {
          throw new TypeError("internal detail");
        },
        nested: async (p: string, ctx: RequestContext) => ({
          outer: ctx.traceparent,
          inner: await ctx.mesh.request("echo", "context", p),
        }),
        nestedUntil: (ms: number, ctx: RequestContext) =>
          ctx.mesh.request("echo", "context", null, { deadline: Date.now() + ms }),
      },
    }),
  );
});

afterAll(() => cleanup(server, ...agents, mesh));

describe("request/reply through the SDK", () => {
  it("round-trips nested values and binary data in MessagePack and JSON", async () => {
    const value = { a: [1, { b: "c" }], n: -1.5, big: 2 ** 50, bin: new Uint8Array([0, 255, 7]) };
    const out = await mesh.request<typeof value>("echo", "say", value);
    expect(out.a).toEqual([1, { b: "c" }]);
    expect(out.big).toBe(2 ** 50);
    expect([...out.bin]).toEqual([0, 255, 7]);
    expect(await mesh.request("echo", "say", { j: [1] }, { codec: "json" })).toEqual({ j: [1] });
    expect(await mesh.request("echo", "say")).toBeUndefined();
  });

  it("sends deadline, attempt and a new trace to the handler", async () => {
    const before = Date.now();
    const ctx = await mesh.request<Record<string, unknown>>("echo", "context", null, {
      timeout: 3000,
    });
    expect(ctx.deadline).toBeGreaterThanOrEqual(before + 3000);
    expect(ctx.deadline).toBeLessThanOrEqual(Date.now() + 3000);
    expect(ctx.attempt).toBe(1);
    expect(parseTraceparent(ctx.traceparent as string)).toBeDefined();
    expect(ctx.method).toBe("context");
    expect(ctx.service).toBe("echo");
    expect(ctx.instance).toBe(agents[0]!.id);
  });

  it("continues a caller's trace and passes custom headers", async () => {
    const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const ctx = await mesh.request<{ traceparent: string; headers: Record<string, string> }>(
      "echo",
      "context",
      null,
      {
        headers: { traceparent: parent, "X-Tenant": "t1" },
      },
    );
    expect(parseTraceparent(ctx.traceparent)?.traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    expect(ctx.traceparent).not.toBe(parent);
    expect(ctx.headers["X-Tenant"]).toBe("t1");
  });

  it("continues a trace sent as Go's canonical Traceparent and keeps mesh headers its own", async () => {
    const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const h = natsHeaders();
    h.set("Traceparent", parent);
    const subject = `${prefix}.svc.echo.context`;
    const reply = await agents[0]!.connection.request(subject, "null", {
      headers: h,
      timeout: 5000,
    });
    const ctx = reply.json<{ traceparent: string }>();
    expect(parseTraceparent(ctx.traceparent)?.traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    const mine = await mesh.request<{ deadline: number; attempt: number }>(
      "echo",
      "context",
      null,
      {
        headers: { "Mesh-Deadline": "1", "mesh-attempt": "9" },
        timeout: 3000,
      },
    );
    expect(mine.deadline).toBeGreaterThan(Date.now());
    expect(mine.attempt).toBe(1);
  });

  it("sends traceparent only when the caller propagates a trace", async () => {
    const seen: (string | undefined)[] = [];
    const sub = mesh.connection.subscribe(subjects(prefix).service("wire", "look"), {
      callback: (_err, msg) => {
        seen.push(msg.headers?.get("traceparent") || undefined);
        msg.respond();
      },
    });
    await mesh.connection.flush();
    const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    await mesh.request("wire", "look");
    await mesh.request("wire", "look", null, { headers: { traceparent: parent } });
    sub.unsubscribe();
    expect(seen[0]).toBeUndefined();
    expect(parseTraceparent(seen[1])?.traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    expect(seen[1]).not.toBe(parent);
  });

  it("starts a new trace when the received traceparent is invalid", async () => {
    const h = natsHeaders();
    h.set("traceparent", "00-zzzz-bad");
    const subject = `${prefix}.svc.echo.context`;
    const reply = await agents[0]!.connection.request(subject, "null", {
      headers: h,
      timeout: 5000,
    });
    expect(parseTraceparent(reply.json<{ traceparent: string }>().traceparent)).toBeDefined();
  });

  it("carries tracestate into nested calls only with a valid traceparent (W3C)", async () => {
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    type Nested = { inner: { headers: Record<string, string> } };
    const withParent = await mesh.request<Nested>("echo", "nested", "x", {
      headers: { traceparent, tracestate: "vendor=abc" },
    });
    expect(withParent.inner.headers.tracestate).toBe("vendor=abc");
    // Without a traceparent, or with one that does not parse, the handler starts a new trace:
    // the tracestate belongs to no trace and is not passed on.
    const alone = await mesh.request<Nested>("echo", "nested", "x", {
      headers: { tracestate: "vendor=abc" },
    });
    expect(alone.inner.headers.tracestate).toBeUndefined();
    const invalid = await mesh.request<Nested>("echo", "nested", "x", {
      headers: { traceparent: "00-zzzz-bad", tracestate: "vendor=abc" },
    });
    expect(invalid.inner.headers.tracestate).toBeUndefined();
    // A peer's oversized tracestate is cut to W3C's 512 characters before nested calls carry it.
    const members = Array.from({ length: 400 }, (_, i) => `k${i}=${"v".repeat(20)}`);
    const long = await mesh.request<Nested>("echo", "nested", "x", {
      headers: { traceparent, tracestate: members.join(",") },
    });
    expect(long.inner.headers.tracestate).toBe(members.slice(0, 20).join(","));
  });

  it("refuses an idempotency key that could corrupt the header block", async () => {
    await expect(
      mesh.request("echo", "say", 1, { idempotent: true, idempotencyKey: "k\r\nInjected: 1" }),
    ).rejects.toThrow(TypeError);
    expect(
      await mesh.request("echo", "say", 1, { idempotent: true, idempotencyKey: "order-42" }),
    ).toBe(1);
  });

  it("refuses header names and values that would corrupt the header block", async () => {
    await expect(mesh.request("echo", "say", 1, { headers: { "Bad Name": "x" } })).rejects.toThrow(
      TypeError,
    );
    await expect(
      mesh.request("echo", "say", 1, { headers: { "X-A": "a\r\nInjected: 1" } }),
    ).rejects.toThrow(TypeError);
  });

  it("lets nested calls inherit the deadline and the trace", async () => {
    const out = await mesh.request<{
      outer: string;
      inner: { traceparent: string; deadline: number };
    }>("echo", "nested", "x", { timeout: 4000 });
    expect(parseTraceparent(out.inner.traceparent)?.traceId).toBe(
      parseTraceparent(out.outer)?.traceId,
    );
    expect(out.inner.deadline).toBeLessThanOrEqual(Date.now() + 4000);
  });

  it("gives a nested call the earlier of its own deadline and the incoming one, if any", async () => {
    const before = Date.now();
    const inherited = await mesh.request<{ deadline: number }>("echo", "nestedUntil", 60_000, {
      timeout: 2000,
    });
    expect(inherited.deadline).toBeLessThanOrEqual(Date.now() + 2000);
    // A plain NATS request carries no Mesh-Deadline: the agent caps the call far later than
    // the nested call's own deadline, which applies.
    const reply = await mesh.connection.request(
      subjects(prefix).service("echo", "nestedUntil"),
      JSON.stringify(3000),
      { timeout: 5000 },
    );
    const own = reply.json<{ deadline: number }>();
    expect(own.deadline).toBeGreaterThanOrEqual(before + 3000);
    expect(own.deadline).toBeLessThanOrEqual(Date.now() + 3000);
  });

  it("delivers every error code end to end", async () => {
    expect(await code(mesh.request("echo", "nope"))).toBe("NOT_FOUND");
    expect(await code(mesh.request("echo", "forbidden"))).toBe("FORBIDDEN");
    expect(await code(mesh.request("echo", "crash"))).toBe("INTERNAL");
    expect(await code(mesh.request("nobody", "x", null, { timeout: 10_000 }))).toBe("UNAVAILABLE");
    expect(await code(mesh.request("echo", "slow", 1000, { timeout: 100 }))).toBe(
      "DEADLINE_EXCEEDED",
    );
    expect(await code(mesh.request("echo", "say", "x".repeat(300 * 1024)))).toBe(
      "PAYLOAD_TOO_LARGE",
    );
    expect(await code(mesh.request("echo", "say", { n: 10n ** 30n }))).toBe("BAD_REQUEST");
    const err = await mesh.request("echo", "custom").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeshError);
    expect(err).toMatchObject({
      code: "INSUFFICIENT_FUNDS",
      status: 409,
      message: "balance too low",
      data: { balance: 3 },
    });
  });

  it("answers no responders with UNAVAILABLE without waiting for the timeout", async () => {
    const start = Date.now();
    expect(await code(mesh.request("nobody", "x", null, { timeout: 20_000 }))).toBe("UNAVAILABLE");
    expect(Date.now() - start).toBeLessThan(5000);
  });

  it("times out close to the timeout and aborts the handler's signal at the deadline", async () => {
    const start = Date.now();
    expect(await code(mesh.request("echo", "slow", 20_000, { timeout: 300 }))).toBe(
      "DEADLINE_EXCEEDED",
    );
    const elapsed = Date.now() - start;
    expect(elapsed).toBeGreaterThanOrEqual(295);
    // Well before the handler (20 s) or the mesh's default timeout (5 s) would end it, with
    // room for a loaded host.
    expect(elapsed).toBeLessThan(4000);
    const record = seen.at(-1)!;
    await expect.poll(() => record.aborted).toBeInstanceOf(DOMException);
    expect((record.aborted as DOMException).name).toBe("TimeoutError");
  });

  it("rejects promptly with the signal's reason on abort", async () => {
    const controller = new AbortController();
    const pending = mesh.request("echo", "slow", 20_000, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("user cancelled")), 50);
    const start = Date.now();
    await expect(pending).rejects.toThrow("user cancelled");
    // Not when the handler or the mesh's default timeout (5 s) ends the call.
    expect(Date.now() - start).toBeLessThan(4000);
    await expect(
      mesh.request("echo", "say", 1, { signal: AbortSignal.abort("already") }),
    ).rejects.toBe("already");
  });

  it("retries a timed-out idempotent call with the same idempotency key", async () => {
    idemCalls = [];
    const out = await mesh.request("echo", "idem", 1500, {
      idempotent: true,
      retries: 1,
      timeout: 2000,
    });
    expect(out).toBe(2);
    expect(idemCalls.map((c) => c.attempt)).toEqual([1, 2]);
    expect(idemCalls[0]?.key).toBeDefined();
    expect(idemCalls[1]?.key).toBe(idemCalls[0]?.key);
  });

  it("does not retry a timed-out call that is not idempotent", async () => {
    idemCalls = [];
    expect(await code(mesh.request("echo", "idem", 1500, { retries: 2, timeout: 500 }))).toBe(
      "DEADLINE_EXCEEDED",
    );
    expect(idemCalls).toHaveLength(1);
    expect(idemCalls[0]?.key).toBeUndefined();
  });

  it("retries OVERLOADED on another instance and succeeds", async () => {
    const busy = await startAgent({
      servers: server.url,
      prefix,
      service: "busy",
      concurrency: 1,
      methods: { work: (ms: number) => sleep(ms, "busy-a") },
    });
    const spare = await startAgent({
      servers: server.url,
      prefix,
      service: "busy",
      concurrency: 1,
      methods: { work: (ms: number) => sleep(ms, "busy-b") },
    });
    agents.push(busy, spare);
    // Five concurrent calls on two slots: the overflow is refused and retried until a slot frees.
    const results = await Promise.all(
      Array.from({ length: 5 }, () =>
        mesh.request("busy", "work", 30, { retries: 20, timeout: 5000 }),
      ),
    );
    expect(results.every((r) => r === "busy-a" || r === "busy-b")).toBe(true);
  });

  it("refuses invalid names and options with TypeError before sending", async () => {
    await expect(mesh.request("bad.name", "x")).rejects.toThrow(TypeError);
    await expect(mesh.request("echo", "*")).rejects.toThrow(TypeError);
    await expect(mesh.request("echo", "say", 1, { timeout: -5 })).rejects.toThrow(TypeError);
    await expect(mesh.request("echo", "say", 1, { codec: "xml" as never })).rejects.toThrow(
      TypeError,
    );
    await expect(connectMesh({ servers: server.url, prefix: "a b" })).rejects.toThrow(TypeError);
  });
});

describe("closing the SDK", () => {
  it("lets a pending call finish, then refuses new ones with UNAVAILABLE", async () => {
    const m = await connectMesh({ servers: server.url, prefix, closeTimeoutMs: 3000 });
    const pending = m.request("echo", "slow", 200);
    const closing = m.close();
    expect(m.close()).toBe(closing);
    expect(await code(m.request("echo", "say", 1))).toBe("UNAVAILABLE");
    await expect(pending).resolves.toBe("slow done");
    await closing;
    expect(m.connection.isClosed()).toBe(true);
  });

  it("rejects calls still pending after the close timeout with UNAVAILABLE", async () => {
    const m = await connectMesh({ servers: server.url, prefix, closeTimeoutMs: 100 });
    const pending = m.request("echo", "slow", 3000);
    await m.close();
    expect(await code(pending)).toBe("UNAVAILABLE");
  });
});
