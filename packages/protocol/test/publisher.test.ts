import { ClosedConnectionError, type Msg, type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { isMeshError } from "@natsmesh/protocol";
import { Publisher } from "@natsmesh/protocol/internal";
import { cleanup, setup, type TestSetup } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestSetup;

beforeAll(async () => {
  t = await setup({ maxPayload: 4096 });
});
afterAll(() => cleanup(t));

/** What a subscriber on `subject` receives from what `send` publishes. */
async function received(subject: string, send: () => void, count = 1): Promise<Msg[]> {
  const got: Msg[] = [];
  const done = new Promise<void>((resolve) => {
    t.nc.subscribe(subject, {
      max: count,
      callback: (_err, msg) => {
        got.push(msg);
        if (got.length === count) resolve();
      },
    });
  });
  await t.nc.flush();
  send();
  await done;
  return got;
}

/** A connection that hides nats.js' protocol handler, as another client version might. */
function withoutInternals(nc: NatsConnection): NatsConnection {
  return new Proxy(nc, {
    get: (target, key) => {
      if (key === "protocol") return undefined;
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

const BLOCK = "NATS/1.0\r\nContent-Type: application/msgpack\r\nX-Id: 7\r\n\r\n";

describe("Publisher", () => {
  it("frames messages itself with the nats.js this repository installs", () => {
    // Degrading to publish() would stay correct but silently slow: an upgrade must not do it.
    expect(new Publisher(t.nc).framed).toBe(true);
    expect(new Publisher(withoutInternals(t.nc)).framed).toBe(false);
  });

  it.each([
    ["framed", () => t.nc],
    ["through publish()", () => withoutInternals(t.nc)],
  ])("delivers subject, reply, headers and payload as nats.js would (%s)", async (_how, nc) => {
    const publisher = new Publisher(nc());
    const [withHeaders, bytesHeaders, bare, noReply] = await received(
      `${t.prefix}.pub`,
      () => {
        publisher.publish(`${t.prefix}.pub`, "_INBOX.abc.1", BLOCK, new Uint8Array([1, 2, 3]));
        publisher.publish(`${t.prefix}.pub`, "_INBOX.abc.2", Buffer.from(BLOCK), Buffer.from("é"));
        publisher.publish(`${t.prefix}.pub`, "_INBOX.abc.3", "", new Uint8Array([9]));
        publisher.publish(`${t.prefix}.pub`, "", "", new Uint8Array(0));
      },
      4,
    );
    expect(withHeaders!.reply).toBe("_INBOX.abc.1");
    expect(withHeaders!.headers?.get("Content-Type")).toBe("application/msgpack");
    expect(withHeaders!.headers?.get("X-Id")).toBe("7");
    expect([...withHeaders!.data]).toEqual([1, 2, 3]);
    expect(bytesHeaders!.headers?.get("X-Id")).toBe("7");
    expect(bytesHeaders!.string()).toBe("é");
    expect(bare!.reply).toBe("_INBOX.abc.3");
    expect(bare!.headers).toBeUndefined();
    expect([...bare!.data]).toEqual([9]);
    expect(noReply!.reply).toBe("");
    expect(noReply!.data.length).toBe(0);
  });

  it.each([
    ["framed", () => t.nc],
    ["through publish()", () => withoutInternals(t.nc)],
  ])(
    "publishes to a subject given as bytes, as a reply to a received message is (%s)",
    async (_how, nc) => {
      const publisher = new Publisher(nc());
      const subject = `${t.prefix}.bytes.x`;
      const [plain, withHeaders] = await received(
        subject,
        () => {
          publisher.publish(Buffer.from(subject), "", "", new Uint8Array([4, 5]));
          publisher.publish(
            Buffer.from(`..${subject}`).subarray(2),
            "_INBOX.q.1",
            BLOCK,
            Buffer.from("é"),
          );
        },
        2,
      );
      expect(plain!.subject).toBe(subject);
      expect(plain!.reply).toBe("");
      expect(plain!.headers).toBeUndefined();
      expect([...plain!.data]).toEqual([4, 5]);
      expect(withHeaders!.subject).toBe(subject);
      expect(withHeaders!.reply).toBe("_INBOX.q.1");
      expect(withHeaders!.headers?.get("X-Id")).toBe("7");
      expect(withHeaders!.string()).toBe("é");
    },
  );

  it.each([
    ["framed", () => t.nc],
    ["through publish()", () => withoutInternals(t.nc)],
  ])(
    "publishes requests with a reply subject made of a prefix and a decimal token (%s)",
    async (_how, nc) => {
      const publisher = new Publisher(nc());
      const subject = `${t.prefix}.req`;
      const prefix = Buffer.from("_INBOX.mux.");
      const tokens = [0, 7, 10, 99, 100, 123456789, 2 ** 31, Number.MAX_SAFE_INTEGER];
      const got = await received(
        subject,
        () => {
          tokens.forEach((token, i) => {
            const target = i % 2 === 0 ? subject : Buffer.from(subject);
            const headers = i % 3 === 0 ? "" : i % 3 === 1 ? BLOCK : Buffer.from(BLOCK);
            publisher.request(target, prefix, token, headers, new Uint8Array(i));
          });
        },
        tokens.length,
      );
      got.forEach((msg, i) => {
        expect(msg.subject).toBe(subject);
        expect(msg.reply).toBe(`_INBOX.mux.${tokens[i]}`);
        if (i % 3 === 0) expect(msg.headers).toBeUndefined();
        else expect(msg.headers?.get("X-Id")).toBe("7");
        expect(msg.data.length).toBe(i);
      });
    },
  );

  it("refuses a request over max_payload with PAYLOAD_TOO_LARGE, sending nothing", () => {
    const publisher = new Publisher(t.nc);
    const outMsgs = t.nc.stats().outMsgs;
    const prefix = Buffer.from("_INBOX.mux.");
    expect(() =>
      publisher.request(`${t.prefix}.big`, prefix, 1, BLOCK, new Uint8Array(4097 - BLOCK.length)),
    ).toThrow(expect.objectContaining({ code: "PAYLOAD_TOO_LARGE" }));
    expect(t.nc.stats().outMsgs).toBe(outMsgs);
  });

  it("counts what it sends in the connection's statistics", async () => {
    const publisher = new Publisher(t.nc);
    const before = t.nc.stats();
    await received(`${t.prefix}.stats`, () =>
      publisher.publish(`${t.prefix}.stats`, "", BLOCK, new Uint8Array(10)),
    );
    const after = t.nc.stats();
    expect(after.outMsgs - before.outMsgs).toBe(1);
    expect(after.outBytes - before.outBytes).toBe(BLOCK.length + 10);
  });

  it("refuses headers and payload over max_payload with PAYLOAD_TOO_LARGE, sending nothing", () => {
    const publisher = new Publisher(t.nc);
    const outMsgs = t.nc.stats().outMsgs;
    let thrown: unknown;
    try {
      publisher.publish(`${t.prefix}.big`, "", BLOCK, new Uint8Array(4096 - BLOCK.length + 1));
    } catch (err) {
      thrown = err;
    }
    expect(isMeshError(thrown) && thrown.code).toBe("PAYLOAD_TOO_LARGE");
    expect(t.nc.stats().outMsgs).toBe(outMsgs);
    // Exactly at the limit is allowed.
    publisher.publish(`${t.prefix}.big`, "", BLOCK, new Uint8Array(4096 - BLOCK.length));
  });

  it("throws nats.js' ClosedConnectionError on a closed connection, as publish() does", async () => {
    const nc = await connect({ servers: t.server.url });
    const publisher = new Publisher(nc);
    await nc.close();
    expect(() => publisher.publish(`${t.prefix}.x`, "", "", new Uint8Array(1))).toThrow(
      ClosedConnectionError,
    );
  });
});
