import { jetstreamManager } from "@nats-io/jetstream";
import { type Agent, type AgentOptions, startAgent } from "@natsmesh/agent";
import { listDeadLetters } from "@natsmesh/protocol/internal";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup, uniquePrefix, until } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/** A service module: what `natsmesh agent <module>` runs. */
type ServiceModule = Pick<AgentOptions, "service" | "version" | "methods" | "events">;

let t: TestSetup;
let orders: ServiceModule;
beforeAll(async () => {
  const url = new URL("../examples/services/orders.mjs", import.meta.url);
  orders = ((await import(url.href)) as { default: ServiceModule }).default;
  t = await setup({ tag: "exev" });
});
afterAll(() => cleanup(t));

describe("examples/services/orders.mjs", () => {
  it("emits order.created from a method, ships each order once, dead-letters what cannot ship", async () => {
    const prefix = uniquePrefix("exev");
    const started: (Agent | Mesh)[] = [];
    try {
      const mesh = await connectMesh({ servers: t.server.url, prefix, presence: false });
      started.push(mesh);
      const agent = await startAgent({ ...orders, servers: t.server.url, prefix, mesh });
      started.push(agent);
      expect(agent.record.events).toEqual([
        { pattern: "order.created", mode: "durable" },
        { pattern: "order.*", mode: "broadcast" },
      ]);
      const order = await mesh.request<{ id: string }>("orders", "place", { item: "tea" });
      const big = await mesh.request<{ id: string }>("orders", "place", {
        item: "tea",
        quantity: 500,
      });
      const status = () =>
        mesh.request<{ shipped: string[]; recent: { id: string }[] }>("orders", "status");
      await until("the order shipped", async () => (await status()).shipped.includes(order.id));
      expect((await status()).recent.map((r) => r.id)).toEqual([order.id, big.id]);
      const jsm = await jetstreamManager(mesh.connection);
      await until("the big order's dead letter", async () => {
        return (await listDeadLetters(jsm, prefix)).length === 1;
      });
      const [letter] = await listDeadLetters(jsm, prefix);
      expect(letter).toMatchObject({ service: "orders", code: "OUT_OF_STOCK", eventId: big.id });
      await expect(mesh.request("orders", "place", {})).rejects.toMatchObject({
        code: "BAD_REQUEST",
      });
    } finally {
      await cleanup(...started);
    }
  }, 30_000);
});
