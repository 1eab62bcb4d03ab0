import { type Agent, MeshError, startAgent } from "@natsmesh/agent";
import { connectMesh } from "@natsmesh/sdk";
import {
  cleanup,
  killAllProcesses,
  setup,
  type TestSetup,
  uniquePrefix,
  until,
} from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./cli-process.js";

let t: TestSetup;
const agents: Agent[] = [];

beforeAll(async () => {
  t = await setup({ tag: "cliev" });
});
afterEach(async () => {
  await killAllProcesses();
  await cleanup(...agents.splice(0));
});
afterAll(() => cleanup(t));

const streams = { maxBytes: 64 * 1024 ** 2, deadLetterMaxBytes: 16 * 1024 ** 2 };

function cli(prefix: string, ...args: string[]) {
  return runCli(args, { NATS_URL: t.server.url, MESH_PREFIX: prefix });
}

describe("natsmesh events and dlq", () => {
  it("emits, lists groups and dead letters, shows, replays and purges them", async () => {
    const prefix = uniquePrefix("cliev");
    let healthy = false;
    const handled: unknown[] = [];
    agents.push(
      await startAgent({
        servers: t.server.url,
        prefix,
        streams,
        service: "billing",
        events: {
          "order.created": {
            maxDeliver: 1,
            handler: (p: unknown) => {
              if (!healthy) throw new Error("ledger unreachable");
              handled.push(p);
            },
          },
          "cache.*": { mode: "broadcast", handler: () => undefined },
        },
      }),
    );

    const emitted = await cli(prefix, "events", "emit", "order.created", '{"id":7}', "--json");
    expect(emitted.code).toBe(0);
    expect(JSON.parse(emitted.stdout)).toMatchObject({ seq: 1, duplicate: false });
    const again = await cli(prefix, "events", "emit", "order.created", '{"id":8}', "--id", "x");
    expect(again).toMatchObject({ code: 0 });
    expect(again.stdout).toMatch(/^order\.created stored as \S+_events #2 \(id x\)$/);

    const letters = async () => JSON.parse((await cli(prefix, "dlq", "ls", "--json")).stdout);
    await until("two dead letters", async () => (await letters()).length === 2);
    const [first] = await letters();
    expect(first).toMatchObject({
      valid: true,
      service: "billing",
      event: "order.created",
      code: "INTERNAL",
      message: "ledger unreachable",
      deliveries: 1,
      seq: 1,
      replayable: true,
    });

    const table = await cli(prefix, "dlq", "ls");
    expect(table.code).toBe(0);
    expect(table.stdout.split("\n")[0]!.split(/\s+/)).toEqual([
      "SEQ",
      "SERVICE",
      "EVENT",
      "CODE",
      "DELIVERIES",
      "AGE",
      "MESSAGE",
    ]);
    expect(table.stdout).toMatch(
      /billing\s+order\.created\s+INTERNAL\s+1\s+\d+s\s+ledger unreachable/,
    );

    const overview = await cli(prefix, "events", "ls", "--json");
    expect(overview.code).toBe(0);
    const o = JSON.parse(overview.stdout);
    expect(o.groups).toEqual([
      expect.objectContaining({
        service: "billing",
        pattern: "order.created",
        pending: 0,
        deadLetters: 2,
      }),
    ]);
    expect(o.deadLetters).toEqual({ billing: 2 });
    const text = await cli(prefix, "events", "ls");
    // pending, in flight, redelivered, dead letters
    expect(text.stdout).toMatch(/billing\s+order\.created\s+0\s+0\s+0\s+2\s/);
    expect(text.stdout).toMatch(/^billing\s+2$/m);

    const shown = await cli(prefix, "dlq", "show", String(first.dlqSeq), "--json");
    expect(JSON.parse(shown.stdout)).toMatchObject({ payload: { id: 7 }, code: "INTERNAL" });
    const shownText = await cli(prefix, "dlq", "show", String(first.dlqSeq));
    expect(shownText.stdout).toMatch(/billing gave up on order\.created/);

    const instances = await cli(prefix, "ls");
    expect(instances.code).toBe(0);

    healthy = true;
    const replayed = await cli(prefix, "dlq", "replay", "--service", "billing", "--json");
    expect(replayed.code).toBe(0);
    expect(JSON.parse(replayed.stdout).replayed).toHaveLength(2);
    await until("both replays handled", () => handled.length === 2);
    expect(handled).toEqual([{ id: 7 }, { id: 8 }]);
    expect(await letters()).toEqual([]);

    const missing = await cli(prefix, "dlq", "replay", "99");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/dead letter 99 not replayed: NOT_FOUND/);
    expect((await cli(prefix, "dlq", "purge")).code).toBe(2);
    const purged = await cli(prefix, "dlq", "purge", "--service", "billing", "--json");
    expect(JSON.parse(purged.stdout)).toEqual({ purged: 0 });
  }, 60_000);

  it("purges real dead letters: one event of a service, then the service, then all", async () => {
    const prefix = uniquePrefix("cliev");
    const refuse = () => {
      throw new MeshError("BAD_REQUEST", "refused");
    };
    for (const service of ["billing", "shipping"]) {
      agents.push(
        await startAgent({
          servers: t.server.url,
          prefix,
          streams,
          service,
          events: { "order.*": refuse },
        }),
      );
    }
    await using mesh = await connectMesh({ servers: t.server.url, prefix, presence: false });
    for (const event of ["order.created", "order.created", "order.paid"]) {
      await mesh.emit(event, {});
    }
    type Letter = { service: string; event: string };
    const letters = async () =>
      JSON.parse((await cli(prefix, "dlq", "ls", "--json")).stdout) as Letter[];
    const kept = async () =>
      (await letters()).map((l) => `${l.service} ${l.event}`).sort((a, b) => (a < b ? -1 : 1));
    // Each service dead-letters every event: 3 each.
    await until("six dead letters", async () => (await letters()).length === 6);

    const one = await cli(
      prefix,
      "dlq",
      "purge",
      "--service",
      "billing",
      "--event",
      "order.created",
      "--json",
    );
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toEqual({ purged: 2 });
    expect(await kept()).toEqual([
      "billing order.paid",
      "shipping order.created",
      "shipping order.created",
      "shipping order.paid",
    ]);

    const service = await cli(prefix, "dlq", "purge", "--service", "shipping");
    expect(service).toMatchObject({ code: 0, stdout: "purged 3 dead letters" });
    expect(await kept()).toEqual(["billing order.paid"]);

    const all = await cli(prefix, "dlq", "purge", "--all", "--json");
    expect(JSON.parse(all.stdout)).toEqual({ purged: 1 });
    expect(await letters()).toEqual([]);
    // Gone from the stream, not only from the listing.
    const o = JSON.parse((await cli(prefix, "events", "ls", "--json")).stdout);
    expect(o.deadLetterStream.messages).toBe(0);
    expect(o.deadLetters).toEqual({});
  }, 60_000);

  it("refuses a bad event name and a non-JSON payload with exit 2", async () => {
    const prefix = uniquePrefix("cliev");
    const bad = await cli(prefix, "events", "emit", "order.*", "{}");
    expect(bad.code).toBe(2);
    const notJson = await cli(prefix, "events", "emit", "order.created", "{nope");
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toMatch(/not JSON/);
  });
});
