import { AckPolicy, DeliverPolicy, jetstreamManager } from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { type InstanceRecord, presenceBucket } from "@natsmesh/protocol";
import {
  type PresenceWatch,
  type PresenceWatchOptions,
  type PresenceWatchStatus,
  readPresence,
  watchPresence,
} from "@natsmesh/sdk/internal";
import {
  cleanup,
  createPresenceBucket,
  instanceRecord,
  putRecord,
  setup,
  type TestSetup,
  uniquePrefix,
  until,
} from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

let t: TestSetup;
const watches: PresenceWatch[] = [];

beforeAll(async () => {
  t = await setup();
});
afterEach(async () => {
  for (const w of watches.splice(0)) w.stop();
});
afterAll(() => cleanup(t));

function record(prefix: string, service: string, id: string, weight = 100): InstanceRecord {
  return instanceRecord(prefix, service, { id, weight });
}

/** A watch of `prefix` that records what it reports as `<type> <key>` lines. */
function follow(prefix: string, options: Partial<PresenceWatchOptions> = {}) {
  const events: string[] = [];
  const statuses: PresenceWatchStatus[] = [];
  const invalid: string[] = [];
  const watch = watchPresence(t.nc, {
    prefix,
    onEvent: (e) => events.push(`${e.type} ${e.key}`),
    onStatus: (s) => statuses.push(s),
    onInvalid: (key) => invalid.push(key),
    ...options,
  });
  watches.push(watch);
  const waitFor = (what: string, check: () => boolean) =>
    until(
      () => `${what} (events: ${events.join(", ")}; statuses: ${statuses.map((s) => s.type)})`,
      check,
    );
  return { watch, events, statuses, invalid, waitFor };
}

describe("watchPresence", () => {
  it("reports the snapshot, says it is current, then follows changes", async () => {
    const prefix = uniquePrefix();
    const kv = await createPresenceBucket(t.nc, prefix);
    await putRecord(kv, record(prefix, "echo", "a"));
    await putRecord(kv, record(prefix, "echo", "b"));
    const w = follow(prefix);
    await w.waitFor("current", () => w.statuses.length > 0);
    expect(w.statuses).toEqual([{ type: "current", bucket: presenceBucket(prefix) }]);
    expect(w.events.sort()).toEqual(["up echo.a", "up echo.b"]);

    await putRecord(kv, record(prefix, "echo", "a", 7));
    await putRecord(kv, record(prefix, "echo", "a", 7));
    await kv.delete("echo.b");
    await putRecord(kv, record(prefix, "echo", "c"));
    await w.waitFor("up of c", () => w.events.includes("up echo.c"));
    expect(w.events.slice(2)).toEqual(["update echo.a", "down echo.b", "up echo.c"]);
  });

  it("is current at once when the watched keys hold nothing", async () => {
    const empty = uniquePrefix();
    await createPresenceBucket(t.nc, empty);
    const markers = uniquePrefix();
    const kv = await createPresenceBucket(t.nc, markers);
    await putRecord(kv, record(markers, "echo", "gone"));
    await kv.delete("echo.gone");
    await putRecord(kv, record(markers, "billing", "x"));
    const both = [follow(empty), follow(markers, { service: "echo" })];
    for (const w of both) {
      await w.waitFor("current", () => w.statuses.length > 0);
      expect(w.statuses.map((s) => s.type)).toEqual(["current"]);
      expect(w.events).toEqual([]);
    }
  });

  it("waits for a missing bucket, then watches it once a registry creates it", async () => {
    const prefix = uniquePrefix();
    const w = follow(prefix);
    await w.waitFor("waiting", () => w.statuses.length > 0);
    expect(w.statuses).toEqual([{ type: "waiting", bucket: presenceBucket(prefix) }]);
    const kv = await createPresenceBucket(t.nc, prefix);
    await putRecord(kv, record(prefix, "echo", "a"));
    await w.waitFor("up of a", () => w.events.includes("up echo.a"));
    expect(w.statuses.map((s) => s.type)).toEqual(["waiting", "current"]);
  });

  it("watches afresh when the bucket is deleted and created again", async () => {
    const prefix = uniquePrefix();
    const kv = await createPresenceBucket(t.nc, prefix);
    await putRecord(kv, record(prefix, "echo", "a"));
    await putRecord(kv, record(prefix, "echo", "b"));
    const w = follow(prefix);
    await w.waitFor("current", () => w.statuses.length > 0);
    const jsm = await jetstreamManager(t.nc);
    await jsm.streams.delete(`KV_${presenceBucket(prefix)}`);
    // A registry creates it again and writes what is live now: b, changed, and c.
    const again = await createPresenceBucket(t.nc, prefix);
    await putRecord(again, record(prefix, "echo", "b", 7));
    await putRecord(again, record(prefix, "echo", "c"));
    await w.waitFor("up of c after the bucket came back", () => w.events.includes("up echo.c"));
    await w.waitFor("down of a", () => w.events.includes("down echo.a"));
    expect(w.events.slice(2).sort()).toEqual(["down echo.a", "up echo.c", "update echo.b"]);
    // And it follows the new bucket from then on.
    await again.delete("echo.c");
    await w.waitFor("down of c", () => w.events.includes("down echo.c"));
  });

  it("reopens a watch whose consumer stalls: heartbeats go on, entries stop", async () => {
    // What a lost cluster node or a stream leader election can leave behind: the watch's consumer
    // is gone, and something keeps its delivery subject alive with heartbeats, so nats.js never
    // notices (it resets an ordered consumer only when heartbeats stop). Made here on one server:
    // the consumer is deleted and replaced by one that heartbeats to the same subject and
    // delivers nothing. Only the watcher's stall check (the stream is past what the watch
    // delivered) can bring the new record in.
    const prefix = uniquePrefix();
    const kv = await createPresenceBucket(t.nc, prefix);
    await putRecord(kv, record(prefix, "echo", "a"));
    const w = follow(prefix);
    await w.waitFor("current", () => w.statuses.length > 0);
    expect(w.events).toEqual(["up echo.a"]);
    const jsm = await jetstreamManager(t.nc);
    const stream = `KV_${presenceBucket(prefix)}`;
    const consumers = await jsm.consumers.list(stream).next();
    expect(consumers).toHaveLength(1);
    const watched = consumers[0]!.config;
    expect(watched.deliver_subject).toBeTypeOf("string");
    expect(await jsm.consumers.delete(stream, consumers[0]!.name)).toBe(true);
    const decoy = await jsm.consumers.add(stream, {
      deliver_subject: watched.deliver_subject!,
      filter_subject: `$KV.${presenceBucket(prefix)}.none.stalled`,
      deliver_policy: DeliverPolicy.New,
      ack_policy: AckPolicy.None,
      idle_heartbeat: nanos(1000),
      flow_control: true,
    });
    try {
      await putRecord(kv, record(prefix, "echo", "b"));
      // The stall check needs two checks ~2 s apart; nothing else recovers this watch.
      await until(
        () => `up of b (events: ${w.events.join(", ")})`,
        () => w.events.includes("up echo.b"),
        { timeoutMs: 20_000 },
      );
      expect(w.events).toEqual(["up echo.a", "up echo.b"]);
      // The reopened watch follows changes again.
      await kv.delete("echo.a");
      await w.waitFor("down of a", () => w.events.includes("down echo.a"));
    } finally {
      await jsm.consumers.delete(stream, decoy.name).catch(() => undefined);
    }
  });

  it("follows one service when given, and reports invalid entries", async () => {
    const prefix = uniquePrefix();
    const kv = await createPresenceBucket(t.nc, prefix);
    await putRecord(kv, record(prefix, "billing", "x"));
    await kv.put("echo.junk", "[]");
    const w = follow(prefix, { service: "echo" });
    await w.waitFor("current", () => w.statuses.length > 0);
    await putRecord(kv, record(prefix, "billing", "y"));
    await putRecord(kv, record(prefix, "echo", "a"));
    await w.waitFor("up of a", () => w.events.length > 0);
    expect(w.events).toEqual(["up echo.a"]);
    expect(w.invalid).toEqual(["echo.junk"]);
  });

  it("ends when stopped, when its signal aborts and when the connection closes", async () => {
    const prefix = uniquePrefix();
    await createPresenceBucket(t.nc, prefix);
    const stopped = follow(prefix);
    stopped.watch.stop();
    await stopped.watch.closed;

    const controller = new AbortController();
    const aborted = follow(prefix, { signal: controller.signal });
    await aborted.waitFor("current", () => aborted.statuses.length > 0);
    controller.abort();
    await aborted.watch.closed;

    const nc = await connect({ servers: t.server.url });
    const own = watchPresence(nc, { prefix, onEvent: () => undefined });
    await nc.close();
    await own.closed;
  });

  it("refuses an invalid service name at once", () => {
    expect(() =>
      watchPresence(t.nc, { prefix: "mesh", service: "a.b", onEvent: () => {} }),
    ).toThrow(TypeError);
  });
});

describe("readPresence", () => {
  it("reads the records of a bucket, one service's, or undefined when there is no bucket", async () => {
    const prefix = uniquePrefix();
    expect(await readPresence(t.nc, { prefix })).toBeUndefined();
    const kv = await createPresenceBucket(t.nc, prefix);
    expect(await readPresence(t.nc, { prefix })).toEqual([]);
    const a = record(prefix, "echo", "a");
    const x = record(prefix, "billing", "x");
    await putRecord(kv, a);
    await putRecord(kv, x);
    await kv.put("echo.junk", "{");
    const invalid: string[] = [];
    const all = await readPresence(t.nc, { prefix, onInvalid: (key) => invalid.push(key) });
    expect(all?.sort((p, q) => p.id.localeCompare(q.id))).toEqual([a, x]);
    expect(invalid).toEqual(["echo.junk"]);
    expect(await readPresence(t.nc, { prefix, service: "billing" })).toEqual([x]);
  });
});

describe("without JetStream", () => {
  let off: TestSetup;
  beforeAll(async () => {
    off = await setup({ jetstream: false });
  });
  afterAll(() => cleanup(off));

  it("reports the failure and keeps trying; readPresence rejects with it", async () => {
    const statuses: PresenceWatchStatus[] = [];
    const w = watchPresence(off.nc, {
      prefix: off.prefix,
      onEvent: () => undefined,
      onStatus: (s) => statuses.push(s),
    });
    watches.push(w);
    await until("a status", () => statuses.length > 0);
    const [status] = statuses;
    expect(status?.type === "error" && (status.error as Error).name).toBe("JetStreamNotEnabled");
    await expect(readPresence(off.nc, { prefix: off.prefix })).rejects.toHaveProperty(
      "name",
      "JetStreamNotEnabled",
    );
  });
});
