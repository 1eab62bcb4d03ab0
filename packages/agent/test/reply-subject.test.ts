import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { type Agent, startAgent } from "@natsmesh/agent";
import { presenceBucket, registryBucket } from "@natsmesh/protocol";
import { cleanup, setup, type TestSetup, until } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// The confused deputy: a caller names a reply subject that the agent's own NATS user may
// publish to, and the agent's reply would do the caller's work.

let t: TestSetup;
let agent: Agent;
let custom: Agent;

beforeAll(async () => {
  t = await setup();
  const kvm = new Kvm(t.nc);
  const presence = await kvm.create(presenceBucket(t.prefix), { history: 1 });
  await presence.put("billing.live", JSON.stringify({ live: true }));
  const registry = await kvm.create(registryBucket(t.prefix), { history: 1 });
  await registry.put("jwks", JSON.stringify({ keys: [] }));
  agent = await startAgent({
    servers: t.server.url,
    prefix: t.prefix,
    service: "billing",
    methods: { echo: (payload) => payload },
  });
  custom = await startAgent({
    servers: t.server.url,
    prefix: t.prefix,
    service: "custom",
    inboxPrefixes: ["_INBOX", "_R_checkout"],
    methods: { echo: (payload) => payload },
  });
});

afterAll(() => cleanup(t, agent, custom));

async function streams(): Promise<string[]> {
  const jsm = await jetstreamManager(t.nc);
  const names: string[] = [];
  for await (const name of jsm.streams.names()) names.push(name);
  return names.sort();
}

describe("reply subjects", () => {
  it("drops requests whose reply subject is not an inbox, and counts them", async () => {
    const P = t.prefix;
    const bucket = presenceBucket(P);
    const hostile = [
      `$KV.${bucket}.billing.live`,
      `$JS.API.STREAM.PURGE.KV_${bucket}`,
      `$JS.API.STREAM.DELETE.KV_${bucket}`,
      `$JS.API.STREAM.DELETE.KV_${registryBucket(P)}`,
      `${P}.presence.billing.fake`,
      `${P}.inst.billing.x.echo`,
      "orders.created",
      "_INBOX",
      "_INBOX.",
      "_INBOX..x",
      "_INBOX.a.",
      "_INBOX.*",
      "_INBOX.a.>",
      `_INBOX.${"x".repeat(300)}`,
      "_INBOXES.x",
      "_R_checkout.abc",
    ];
    for (const reply of hostile) {
      t.nc.publish(`${P}.svc.billing.echo`, "{}", { reply });
      t.nc.publish(`${P}.inst.billing.${agent.id}.echo`, "{}", { reply });
    }
    // A request with a legitimate inbox behind them proves the hostile ones were processed.
    expect((await t.nc.request(`${P}.svc.billing.echo`, '"ok"', { timeout: 5000 })).json()).toBe(
      "ok",
    );
    expect(await streams()).toEqual([`KV_${bucket}`, `KV_${registryBucket(P)}`].sort());
    const presence = await new Kvm(t.nc).open(bucket);
    expect((await presence.get("billing.live"))?.json()).toEqual({ live: true });
    await until(
      () => `${hostile.length * 2} dropped replies (${agent.stats().droppedReplies} so far)`,
      () => agent.stats().droppedReplies === hostile.length * 2,
    );
    expect(agent.stats().noReply).toBe(0);
  });

  it("answers replies under a configured custom inbox prefix", async () => {
    const inbox = "_R_checkout.abc.1";
    const sub = t.nc.subscribe(inbox, { max: 1 });
    t.nc.publish(`${t.prefix}.svc.custom.echo`, '"mine"', { reply: inbox });
    for await (const msg of sub) expect(msg.json()).toBe("mine");
    expect(custom.stats().droppedReplies).toBe(0);
  });

  it("counts requests without a reply subject, and answers nothing", async () => {
    const before = agent.stats().noReply;
    t.nc.publish(`${t.prefix}.svc.billing.echo`, "{}");
    await until("the request without a reply subject counted", () => {
      return agent.stats().noReply === before + 1;
    });
  });

  it("never lets NATS micro discovery answer a hostile reply subject", async () => {
    const bucket = presenceBucket(t.prefix);
    const before = agent.stats().droppedReplies;
    for (const verb of ["PING", "INFO", "STATS"]) {
      t.nc.publish(`$SRV.${verb}.billing`, "", { reply: `$JS.API.STREAM.DELETE.KV_${bucket}` });
    }
    await t.nc.flush();
    await until("3 more dropped replies", () => agent.stats().droppedReplies === before + 3);
    expect(await streams()).toContain(`KV_${bucket}`);
    const stats = await t.nc.request(`$SRV.STATS.billing.${agent.id}`, "", { timeout: 5000 });
    expect(stats.json<{ mesh: { droppedReplies: number } }>().mesh.droppedReplies).toBe(before + 3);
  });

  it("refuses inbox prefixes that overlap the mesh or are not subjects", async () => {
    for (const inboxPrefixes of [["$JS"], [t.prefix], [`${t.prefix}.x`], ["a.*"], [""], []]) {
      await expect(
        startAgent({
          servers: "nats://127.0.0.1:1",
          prefix: t.prefix,
          service: "x",
          methods: { a: () => 1 },
          inboxPrefixes,
        }),
      ).rejects.toThrow(TypeError);
    }
  });
});
