import type { KV } from "@nats-io/kv";
import { type Agent, startAgent } from "@natsmesh/agent";
import type { InstanceRecord } from "@natsmesh/protocol";
import { startRegistry } from "@natsmesh/registry";
import {
  cleanup,
  createPresenceBucket,
  instanceRecord,
  killAllProcesses,
  putRecord,
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
  t = await setup();
});
afterEach(killAllProcesses);
afterAll(() => cleanup(t, ...agents));

function ls(prefix: string, ...args: string[]) {
  return runCli(["ls", ...args], { NATS_URL: t.server.url, MESH_PREFIX: prefix });
}

/** A mesh with two live agents (echo, billing) and a hand-written echo record, mirrored to KV. */
async function populatedMesh(): Promise<{ prefix: string; kv: KV; records: InstanceRecord[] }> {
  const prefix = uniquePrefix();
  const kv = await createPresenceBucket(t.nc, prefix);
  const echo = await startAgent({
    servers: t.server.url,
    prefix,
    service: "echo",
    version: "1.2.0",
    zone: "z1",
    methods: { say: (p) => p },
  });
  const billing = await startAgent({
    servers: t.server.url,
    prefix,
    service: "billing",
    weight: 50,
    methods: { charge: (p) => p },
  });
  agents.push(echo, billing);
  const old = instanceRecord(prefix, "echo", { startedAt: Date.now() - 2 * 3_600_000 - 5_000 });
  const records = [echo.record, billing.record, old];
  for (const r of records) await putRecord(kv, r);
  return { prefix, kv, records };
}

describe("natsmesh ls", () => {
  it("says no registry has run when the bucket does not exist; [] with --json", async () => {
    const prefix = uniquePrefix();
    const text = await ls(prefix);
    expect(text.code).toBe(0);
    expect(text.stdout).toBe(`no instances (no registry has run for prefix "${prefix}" yet)`);
    const json = await ls(prefix, "--json");
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([]);
  });

  it('says "no instances" for an empty bucket', async () => {
    const prefix = uniquePrefix();
    const kv = await createPresenceBucket(t.nc, prefix);
    const gone = instanceRecord(prefix, "echo");
    await putRecord(kv, gone);
    await kv.delete(`echo.${gone.id}`);
    const r = await ls(prefix);
    expect(r).toMatchObject({ code: 0, stdout: "no instances", stderr: "" });
  });

  it("prints a table sorted by service then id, skipping invalid values with a warning", async () => {
    const { prefix, kv, records } = await populatedMesh();
    await kv.put("echo.broken", "{not json");
    const wrongKey = instanceRecord(prefix, "echo");
    await kv.put("echo.elsewhere", JSON.stringify(wrongKey));
    await kv.put(
      "echo.badweight",
      JSON.stringify({ ...instanceRecord(prefix, "echo"), weight: -1 }),
    );

    const r = await ls(prefix);
    expect(r.code).toBe(0);
    const [header, ...rows] = r.stdout.split("\n");
    expect(header!.split(/\s+/)).toEqual([
      "SERVICE",
      "ID",
      "VERSION",
      "WEIGHT",
      "STATUS",
      "ZONE",
      "HOST",
      "AGE",
      "EVENTS",
    ]);
    const cells = rows.map((row) => row.split(/\s+/));
    const sorted = [...records].sort(
      (a, b) => a.service.localeCompare(b.service) || a.id.localeCompare(b.id),
    );
    expect(cells.map((c) => c.slice(0, 2))).toEqual(sorted.map((s) => [s.service, s.id]));
    const [billing] = records.filter((x) => x.service === "billing");
    expect(cells.find((c) => c[1] === billing!.id)).toEqual([
      "billing",
      billing!.id,
      "0.0.0",
      "50",
      "ready",
      "-",
      billing!.host,
      expect.stringMatching(/^\d+s$/),
      "-",
    ]);
    expect(cells.find((c) => c[1] === records[0]!.id)?.slice(2, 6)).toEqual([
      "1.2.0",
      "100",
      "ready",
      "z1",
    ]);
    expect(cells.find((c) => c[1] === records[2]!.id)?.at(-2)).toBe("2h");

    const warnings = r.stderr.split("\n");
    expect(warnings).toHaveLength(3);
    for (const key of ["echo.broken", "echo.elsewhere", "echo.badweight"]) {
      expect(
        warnings.some((w) => w.startsWith(`natsmesh: skipping invalid record at key "${key}"`)),
      ).toBe(true);
    }
  });

  it("lists one service when given its name", async () => {
    const { prefix, records } = await populatedMesh();
    const r = await ls(prefix, "echo");
    expect(r.code).toBe(0);
    const ids = r.stdout
      .split("\n")
      .slice(1)
      .map((row) => row.split(/\s+/));
    expect(ids.map((c) => c[0])).toEqual(["echo", "echo"]);
    expect(ids.map((c) => c[1]).sort()).toEqual(
      records
        .filter((x) => x.service === "echo")
        .map((x) => x.id)
        .sort(),
    );
    const none = await ls(prefix, "nosuch");
    expect(none).toMatchObject({ code: 0, stdout: "no instances" });
  });

  it("--json prints the records as a sorted JSON array", async () => {
    const { prefix, records } = await populatedMesh();
    const r = await ls(prefix, "--json");
    expect(r.code).toBe(0);
    const sorted = [...records].sort(
      (a, b) => a.service.localeCompare(b.service) || a.id.localeCompare(b.id),
    );
    expect(JSON.parse(r.stdout)).toEqual(sorted);
    expect(r.stdout).toContain('\n  {\n    "v": 1,');
    const one = await ls(prefix, "billing", "--json");
    expect(JSON.parse(one.stdout)).toEqual(records.filter((x) => x.service === "billing"));
  });

  it("shows an agent's event subscriptions, as announced to a registry, in EVENTS and --json", async () => {
    const prefix = uniquePrefix();
    await using _registry = await startRegistry({ servers: t.server.url, prefix });
    const noop = () => undefined;
    const agent = await startAgent({
      servers: t.server.url,
      prefix,
      service: "orders",
      streams: { maxBytes: 64 * 1024 ** 2, deadLetterMaxBytes: 16 * 1024 ** 2 },
      events: {
        "order.created": noop,
        "cache.*": { mode: "broadcast", handler: noop },
        "audit.>": { mode: "group", handler: noop },
      },
    });
    agents.push(agent);
    const listed = async () => JSON.parse((await ls(prefix, "--json")).stdout) as InstanceRecord[];
    await until("the agent in the presence bucket", async () => (await listed()).length === 1);
    const [record] = await listed();
    expect(record!.id).toBe(agent.id);
    expect(record!.events).toEqual([
      { pattern: "order.created", mode: "durable" },
      { pattern: "cache.*", mode: "broadcast" },
      { pattern: "audit.>", mode: "group" },
    ]);
    const r = await ls(prefix);
    expect(r.code).toBe(0);
    const [header, row, ...rest] = r.stdout.split("\n");
    expect(rest).toEqual([]);
    expect(header!.split(/\s+/).at(-1)).toBe("EVENTS");
    const cells = row!.split(/\s+/);
    expect(cells.slice(0, 2)).toEqual(["orders", agent.id]);
    expect(cells.at(-1)).toBe("order.created,cache.*(broadcast),audit.>(group)");
  });

  it("--prefix wins over MESH_PREFIX", async () => {
    const { prefix, records } = await populatedMesh();
    const r = await runCli(["--prefix", prefix, "ls", "--json"], {
      NATS_URL: t.server.url,
      MESH_PREFIX: uniquePrefix(),
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveLength(records.length);
  });
});
