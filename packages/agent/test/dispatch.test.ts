import { decode as independentDecode } from "@msgpack/msgpack";
import { headers } from "@nats-io/nats-core";
import { type Agent, MeshError, startAgent } from "@natsmesh/agent";
import { codecs, Header } from "@natsmesh/protocol";
import { cleanup, setup, type TestSetup } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestSetup;
let agent: Agent;
let calls = 0;
let holding = 0;
let gate: { open: () => void; wait: Promise<void> } | undefined;

function newGate() {
  let open!: () => void;
  const wait = new Promise<void>((r) => {
    open = r;
  });
  return { open, wait };
}

beforeAll(async () => {
  t = await setup({ maxPayload: 64 * 1024 });
  agent = await startAgent({
    servers: t.server.url,
    prefix: t.prefix,
    service: "echo",
    version: "1.0.0",
    concurrency: 2,
    methods: {
      say: (payload) => {
        calls++;
        return payload;
      },
      fail: () => {
        throw new MeshError("INSUFFICIENT_FUNDS", "not enough money", {
          status: 409,
          data: { need: 5 },
        });
      },
      crash: async () => {
        throw new Error("secret database password in stack");
      },
      big: (n: number) => "x".repeat(n),
      bigint: () => ({ n: 10n ** 30n }),
      hold: async () => {
        holding++;
        await gate?.wait;
        holding--;
        return "released";
      },
    },
  });
});

afterAll(() => cleanup(t, agent));

async function raw(method: string, data: Uint8Array | string, h?: Record<string, string>) {
  const hdrs = h === undefined ? undefined : headers();
  for (const [k, v] of Object.entries(h ?? {})) hdrs!.set(k, v);
  return t.nc.request(`${t.prefix}.svc.echo.${method}`, data, {
    timeout: 5000,
    ...(hdrs ? { headers: hdrs } : {}),
  });
}

describe("agent dispatch", () => {
  it("serves a plain NATS client sending JSON without headers", async () => {
    const msg = await raw("say", JSON.stringify({ hi: [1, 2] }));
    expect(msg.json()).toEqual({ hi: [1, 2] });
    expect(msg.headers).toBeUndefined();
  });

  it("replies in MessagePack that another decoder reads, success without a header block", async () => {
    const msg = await raw("say", codecs.msgpack.encode({ n: 1, bin: new Uint8Array([1, 2]) }), {
      [Header.ContentType]: "application/msgpack",
    });
    // A success reply is in the request's codec, which the caller knows: no headers at all.
    expect(msg.headers).toBeUndefined();
    // @msgpack/msgpack is an independent implementation: no msgpackr on the reading side.
    const out = independentDecode(msg.data) as { n: number; bin: Uint8Array };
    expect(out.n).toBe(1);
    expect([...out.bin]).toEqual([1, 2]);
    // An error reply keeps its headers, Content-Type included.
    const err = await raw("fail", codecs.msgpack.encode(null), {
      [Header.ContentType]: "application/msgpack",
    });
    expect(err.headers?.get(Header.ContentType)).toBe("application/msgpack");
    expect(err.headers?.get(Header.MeshError)).toBe("INSUFFICIENT_FUNDS");
    expect(independentDecode(err.data)).toMatchObject({ code: "INSUFFICIENT_FUNDS" });
  });

  it("answers an unknown method with NOT_FOUND", async () => {
    const msg = await raw("nope", "{}");
    expect(msg.headers?.get(Header.MeshError)).toBe("NOT_FOUND");
    expect(msg.headers?.get(Header.ServiceErrorCode)).toBe("404");
  });

  it("tells apart methods of one length or one prefix, read from the subject's bytes", async () => {
    // `say` and `big` have one length, `big` is a prefix of `bigint`: each reaches its own handler.
    expect((await raw("say", "7")).json()).toBe(7);
    expect((await raw("big", "3")).json()).toBe("xxx");
    expect((await raw("bigint", "null")).headers?.get(Header.MeshError)).toBe("INTERNAL");
    for (const other of ["sax", "sa", "sayy", "bi", "bigin", "Say"]) {
      const msg = await raw(other, "{}");
      expect([other, msg.headers?.get(Header.MeshError)]).toEqual([other, "NOT_FOUND"]);
    }
  });

  it("answers a garbage payload with BAD_REQUEST and keeps serving", async () => {
    const before = calls;
    for (const garbage of ["{not json", new Uint8Array([0xff, 0xfe]), "\u0000"]) {
      const msg = await raw("say", garbage);
      expect(msg.headers?.get(Header.MeshError)).toBe("BAD_REQUEST");
    }
    const bad = await raw("say", new Uint8Array([0xc1]), {
      [Header.ContentType]: "application/msgpack",
    });
    expect(bad.headers?.get(Header.MeshError)).toBe("BAD_REQUEST");
    expect(calls).toBe(before);
    expect((await raw("say", "7")).json()).toBe(7);
  });

  it("answers an unsupported Content-Type with BAD_REQUEST", async () => {
    const msg = await raw("say", "hi", { [Header.ContentType]: "text/plain" });
    expect(msg.headers?.get(Header.MeshError)).toBe("BAD_REQUEST");
  });

  it.each(["soon", "-1", "1e9", "99999999999999999"])(
    "answers Mesh-Deadline %j with BAD_REQUEST",
    async (value) => {
      const msg = await raw("say", "1", { [Header.Deadline]: value });
      expect(msg.headers?.get(Header.MeshError)).toBe("BAD_REQUEST");
    },
  );

  it("reads headers whatever their case, as Go's canonical names arrive", async () => {
    const expired = await raw("say", "1", { "MESH-DEADLINE": String(Date.now() - 1) });
    expect(expired.headers?.get(Header.MeshError)).toBe("DEADLINE_EXCEEDED");
    const msgpack = await raw("say", codecs.msgpack.encode("m"), {
      "content-type": "application/msgpack",
    });
    expect(codecs.msgpack.decode(msgpack.data)).toBe("m");
  });

  it("reads the SDK's own header layout by the same rules as any other", async () => {
    // nats.js writes headers in the order set: these are the SDK's exact bytes, which the agent
    // reads by a shortcut; every outcome must be what the general reader gives.
    const sdk = (deadline: string, contentType = "application/msgpack") =>
      raw("say", contentType === "application/json" ? "[1]" : codecs.msgpack.encode([1]), {
        [Header.ContentType]: contentType,
        [Header.Deadline]: deadline,
      });
    const future = String(Date.now() + 60_000);
    expect(codecs.msgpack.decode((await sdk(future)).data)).toEqual([1]);
    expect((await sdk(future, "application/json")).json()).toEqual([1]);
    expect((await sdk("123456789012345")).headers).toBeUndefined();
    expect((await sdk("1")).headers?.get(Header.MeshError)).toBe("DEADLINE_EXCEEDED");
    for (const bad of ["0", "000", "9".repeat(16), "12a4"]) {
      expect([bad, (await sdk(bad)).headers?.get(Header.MeshError)]).toEqual([bad, "BAD_REQUEST"]);
    }
  });

  it("answers Mesh-Attempt 0 with BAD_REQUEST", async () => {
    const msg = await raw("say", "1", { [Header.Attempt]: "0" });
    expect(msg.headers?.get(Header.MeshError)).toBe("BAD_REQUEST");
  });

  it("refuses expired work with DEADLINE_EXCEEDED without running the handler", async () => {
    const before = calls;
    const msg = await raw("say", "1", { [Header.Deadline]: String(Date.now() - 1) });
    expect(msg.headers?.get(Header.MeshError)).toBe("DEADLINE_EXCEEDED");
    expect(msg.headers?.get(Header.ServiceErrorCode)).toBe("504");
    expect(calls).toBe(before);
  });

  it("passes a handler's own code, status, message and data", async () => {
    const msg = await raw("fail", "");
    expect(msg.headers?.get(Header.MeshError)).toBe("INSUFFICIENT_FUNDS");
    expect(msg.headers?.get(Header.ServiceErrorCode)).toBe("409");
    expect(msg.headers?.get(Header.ServiceError)).toBe("not enough money");
    expect(msg.json()).toEqual({
      code: "INSUFFICIENT_FUNDS",
      status: 409,
      message: "not enough money",
      data: { need: 5 },
    });
  });

  it("turns any other error into INTERNAL without leaking it", async () => {
    const msg = await raw("crash", "");
    expect(msg.headers?.get(Header.MeshError)).toBe("INTERNAL");
    expect(msg.string()).not.toContain("secret");
    expect(msg.headers?.get(Header.ServiceError)).not.toContain("secret");
  });

  it("answers a result that cannot be encoded with INTERNAL", async () => {
    const msg = await raw("bigint", "");
    expect(msg.headers?.get(Header.MeshError)).toBe("INTERNAL");
  });

  it("replaces a reply over max_payload with PAYLOAD_TOO_LARGE", async () => {
    const msg = await raw("big", String(70 * 1024));
    expect(msg.headers?.get(Header.MeshError)).toBe("PAYLOAD_TOO_LARGE");
    expect((await raw("big", "10")).json()).toBe("xxxxxxxxxx");
  });

  it("answers OVERLOADED at once beyond the concurrency limit", async () => {
    gate = newGate();
    const held = [raw("hold", ""), raw("hold", "")];
    // Wait until both handlers are running, by the agent's own count.
    await expect.poll(() => holding).toBe(2);
    const over = await raw("hold", "");
    expect(over.headers?.get(Header.MeshError)).toBe("OVERLOADED");
    expect(over.headers?.get(Header.ServiceErrorCode)).toBe("429");
    gate.open();
    for (const m of await Promise.all(held)) expect(m.json()).toBe("released");
  });

  it("does not answer a message without a reply subject, and survives it", async () => {
    t.nc.publish(`${t.prefix}.svc.echo.say`, "{}");
    t.nc.publish(`${t.prefix}.inst.echo.${agent.id}.say`, new Uint8Array([0xff]));
    expect((await raw("say", "1")).json()).toBe(1);
  });

  it("serves direct calls on its instance subject", async () => {
    const msg = await t.nc.request(`${t.prefix}.inst.echo.${agent.id}.say`, '"direct"', {
      timeout: 5000,
    });
    expect(msg.json()).toBe("direct");
  });
});

const one = (): number => 1;

describe("agent options", () => {
  it.each<[Record<string, unknown>]>([
    [{ service: "bad.name", methods: { a: one } }],
    [{ service: "ok", methods: {} }],
    [{ service: "ok", methods: { "b*": one } }],
    [{ service: "ok", methods: { a: "not a function" } }],
    [{ service: "ok", methods: { a: one }, concurrency: 0 }],
    [{ service: "ok", methods: { a: one }, weight: 10001 }],
    [{ service: "ok", methods: { a: one }, version: "has space" }],
    [{ service: "ok", methods: { a: one }, prefix: "a.>" }],
    [{ service: "ok", methods: { a: one }, zone: "eu west" }],
  ])("refuses %j with a TypeError before connecting", async (options) => {
    await expect(
      startAgent({ servers: "nats://127.0.0.1:1", ...options } as never),
    ).rejects.toThrow(TypeError);
  });
});
