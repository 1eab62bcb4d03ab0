import { connect } from "@nats-io/transport-node";
import { followConnection } from "@natsmesh/protocol/internal";
import { cleanup, setup, type TestSetup, until } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestSetup;

beforeAll(async () => {
  t = await setup();
});
afterAll(() => cleanup(t));

describe("followConnection", () => {
  it("reports a disconnect and the reconnect across a server restart, until stopped", async () => {
    const seen: string[] = [];
    const follower = followConnection(t.nc, {
      disconnect: (server) => seen.push(`disconnect ${server}`),
      reconnect: (server) => seen.push(`reconnect ${server}`),
    });
    await t.server.restart();
    const host = new URL(t.server.url).host;
    await until("a disconnect and a reconnect", () => seen.length >= 2, { timeoutMs: 15_000 });
    expect(seen.slice(0, 2)).toEqual([`disconnect ${host}`, `reconnect ${host}`]);
    follower.stop();
    await follower.closed;
  });

  it("ends when the connection closes", async () => {
    const nc = await connect({ servers: t.server.url });
    const follower = followConnection(nc, {});
    await nc.close();
    await follower.closed;
  });
});
