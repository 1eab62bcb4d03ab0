import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { connectionOptions, FLUSH_THRESHOLD_BYTES } from "@natsmesh/protocol/internal";
import { cleanup, setup, type TestSetup } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestSetup;

beforeAll(async () => {
  t = await setup();
});
afterAll(() => cleanup(t));

/** The socket writes of `nc` bigger than `min` bytes, counted from now on. */
function countWrites(nc: NatsConnection, min: number): () => number {
  const transport = (nc as unknown as { protocol: { transport: { send(b: Uint8Array): void } } })
    .protocol.transport;
  const send = transport.send.bind(transport);
  let writes = 0;
  transport.send = (b) => {
    if (b.length > min) writes++;
    send(b);
  };
  return () => writes;
}

/** Publishes `count` messages of `size` bytes in one synchronous burst; resolves once all arrived. */
async function burst(nc: NatsConnection, count: number, size: number): Promise<void> {
  const subject = `${t.prefix}.burst.${Math.random().toString(36).slice(2)}`;
  let got = 0;
  const all = new Promise<void>((resolve) => {
    t.nc.subscribe(subject, {
      callback: () => {
        if (++got === count) resolve();
      },
    });
  });
  await t.nc.flush();
  const data = new Uint8Array(size);
  for (let i = 0; i < count; i++) nc.publish(subject, data);
  await all;
}

describe("connectionOptions", () => {
  it("raises nats.js' inline-flush threshold, so a burst above 32 KiB leaves in one write", async () => {
    // nats.js reads the hidden `pendingLimit` option into its protocol handler. If an upgrade
    // renames either, natsmesh connections silently fall back to 32 KiB: this test must fail.
    const nc = await connect(connectionOptions(t.server.url, "flush-test"));
    const plain = await connect({ servers: t.server.url });
    try {
      expect((nc as unknown as { protocol: { pendingLimit: number } }).protocol.pendingLimit).toBe(
        FLUSH_THRESHOLD_BYTES,
      );
      const ours = countWrites(nc, 1024);
      const theirs = countWrites(plain, 1024);
      // 150 × 400 B ≈ 60 KB: over nats.js' 32 KiB default, under ours.
      await burst(nc, 150, 400);
      await burst(plain, 150, 400);
      expect(ours()).toBe(1);
      expect(theirs()).toBe(2);
    } finally {
      await nc.close();
      await plain.close();
    }
  });
});
