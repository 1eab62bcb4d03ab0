import { headers } from "@nats-io/nats-core";
import { type Agent, startAgent } from "@natsmesh/agent";
import { codecs, Header } from "@natsmesh/protocol";
import { cleanup, setup, type TestSetup } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Decoding amplification: a payload of a few bytes per value decodes into one object per value,
// so 1 MiB could become ~88 MB per call. Decoding is bounded before it starts.

let t: TestSetup;
let agent: Agent;
let small: Agent;
let runs = 0;
let holding = 0;
let release: (() => void) | undefined;
let released = new Promise<void>((r) => {
  release = r;
});

beforeAll(async () => {
  t = await setup();
  agent = await startAgent({
    servers: t.server.url,
    prefix: t.prefix,
    service: "dec",
    methods: {
      count: (payload: unknown) => {
        runs++;
        return Array.isArray(payload) ? payload.length : typeof payload;
      },
    },
  });
  small = await startAgent({
    servers: t.server.url,
    prefix: t.prefix,
    service: "small",
    maxElements: 10,
    maxDepth: 3,
    maxInflightBytes: 200_000,
    methods: {
      count: (payload: unknown[]) => payload.length,
      hold: async () => {
        holding++;
        await released;
        holding--;
        return "done";
      },
    },
  });
});

afterAll(() => {
  release?.();
  return cleanup(t, agent, small);
});

const MSGPACK = { [Header.ContentType]: "application/msgpack" };

async function call(service: string, method: string, data: Uint8Array | string, msgpack = true) {
  const h = headers();
  if (msgpack) h.set(Header.ContentType, MSGPACK[Header.ContentType]);
  return t.nc.request(`${t.prefix}.svc.${service}.${method}`, data, {
    timeout: 10_000,
    headers: h,
  });
}

function code(msg: { headers?: { get(k: string): string } }): string | undefined {
  return msg.headers?.get(Header.MeshError) || undefined;
}

/** A MessagePack array32 of `n` copies of one encoded value. */
function array32(n: number, item: number[]): Uint8Array {
  const out = new Uint8Array(5 + n * item.length);
  out.set([0xdd, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
  for (let i = 0; i < n; i++) out.set(item, 5 + i * item.length);
  return out;
}

describe("decoding limits", () => {
  it("refuses a MessagePack payload of a million empty maps with PAYLOAD_TOO_LARGE", async () => {
    const before = runs;
    const msg = await call("dec", "count", array32(1_000_000, [0x80]));
    expect(code(msg)).toBe("PAYLOAD_TOO_LARGE");
    expect(runs).toBe(before);
  });

  it("refuses a JSON payload of 300,000 empty objects with PAYLOAD_TOO_LARGE", async () => {
    const msg = await call("dec", "count", `[${Array(300_000).fill("{}").join(",")}]`, false);
    expect(code(msg)).toBe("PAYLOAD_TOO_LARGE");
  });

  it("refuses nesting deeper than the limit with BAD_REQUEST, in both codecs", async () => {
    const deep = new Uint8Array(201).fill(0x91);
    deep[200] = 0xc0;
    expect(code(await call("dec", "count", deep))).toBe("BAD_REQUEST");
    expect(code(await call("dec", "count", `${"[".repeat(200)}${"]".repeat(200)}`, false))).toBe(
      "BAD_REQUEST",
    );
  });

  it("refuses invalid UTF-8 inside MessagePack strings with BAD_REQUEST", async () => {
    for (const bad of [
      [0xa2, 0xff, 0xfe],
      [0xa2, 0xc3, 0x28],
      [0xd9, 0x03, 0xed, 0xa0, 0x80],
      [0x81, 0xa1, 0xff, 0x01],
    ]) {
      expect(code(await call("dec", "count", new Uint8Array(bad)))).toBe("BAD_REQUEST");
    }
  });

  it("refuses msgpackr's private extensions (Set, Error, RegExp, records) with BAD_REQUEST", async () => {
    for (const bad of [
      [0xd4, 0x73, 0x90], // Set of []
      [0xc7, 0x03, 0x78, 0x92, 0xa0, 0xa0], // RegExp
      [0xd4, 0x72, 0x40], // record definition
      [0xd4, 0x00, 0x00], // "undefined"
    ]) {
      expect(code(await call("dec", "count", new Uint8Array(bad)))).toBe("BAD_REQUEST");
    }
  });

  it("still decodes ordinary payloads, dates and binary", async () => {
    const payload = codecs.msgpack.encode([
      { id: 7, name: "café ☕", at: new Date(1_700_000_000_000), bin: new Uint8Array([1, 2]) },
      [1.5, -3, null, true],
    ]);
    expect(codecs.msgpack.decode((await call("dec", "count", payload)).data)).toBe(2);
    expect((await call("dec", "count", "[1,2,3]", false)).json()).toBe(3);
  });

  it("applies configured limits", async () => {
    const eleven = codecs.msgpack.encode(Array.from({ length: 11 }, (_, i) => i));
    expect(code(await call("small", "count", eleven))).toBe("PAYLOAD_TOO_LARGE");
    const nine = codecs.msgpack.encode(Array.from({ length: 9 }, (_, i) => i));
    expect(codecs.msgpack.decode((await call("small", "count", nine)).data)).toBe(9);
    expect(code(await call("small", "count", codecs.msgpack.encode([[[[1]]]])))).toBe(
      "BAD_REQUEST",
    );
  });

  it("answers OVERLOADED once the requests in flight hold more than maxInflightBytes", async () => {
    const blob = codecs.msgpack.encode(new Uint8Array(60_000));
    const held = [
      call("small", "hold", blob),
      call("small", "hold", blob),
      call("small", "hold", blob),
    ];
    await expect.poll(() => holding).toBe(3);
    // 3 × 60 kB are in flight: a fourth would pass 200,000 bytes though far below concurrency.
    expect(code(await call("small", "hold", blob))).toBe("OVERLOADED");
    expect(small.stats().inflightBytes).toBeGreaterThan(180_000);
    release?.();
    for (const m of await Promise.all(held)) expect(codecs.msgpack.decode(m.data)).toBe("done");
    expect(small.stats().inflightBytes).toBe(0);
    released = Promise.resolve();
    expect(codecs.msgpack.decode((await call("small", "hold", blob)).data)).toBe("done");
  });

  it("refuses a single request larger than maxInflightBytes with PAYLOAD_TOO_LARGE", async () => {
    const blob = codecs.msgpack.encode(new Uint8Array(250_000));
    expect(code(await call("small", "hold", blob))).toBe("PAYLOAD_TOO_LARGE");
  });
});

describe("decoding limit options", () => {
  it.each([{ maxElements: 0 }, { maxDepth: 0 }, { maxInflightBytes: 0 }, { maxDepth: 1.5 }])(
    "refuses %j with a TypeError before connecting",
    async (options) => {
      await expect(
        startAgent({
          servers: "nats://127.0.0.1:1",
          service: "x",
          methods: { a: () => 1 },
          ...options,
        }),
      ).rejects.toThrow(TypeError);
    },
  );
});
