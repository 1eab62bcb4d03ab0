import { Kvm } from "@nats-io/kv";
import { type InstanceRecord, PresenceLimits, presenceBucket } from "@natsmesh/protocol";
import { startRegistry } from "@natsmesh/registry";
import { cleanup, instanceRecord, setup, type TestSetup, uniquePrefix } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lastSeq } from "./helpers.js";

let t: TestSetup;

beforeAll(async () => {
  t = await setup();
});
afterAll(() => cleanup(t));

function recordOf(prefix: string, service: string, id: string): InstanceRecord {
  return instanceRecord(prefix, service, { id, methods: ["m"] });
}

describe("untrusted presence messages", () => {
  it("drops and counts invalid messages, writes nothing for them, and keeps working", async () => {
    const prefix = uniquePrefix("v");
    await using registry = await startRegistry({ servers: t.server.url, prefix, leaseMs: 1000 });
    const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
    const seq = await lastSeq(kv);
    const on = (service: string, id: string) => `${prefix}.presence.${service}.${id}`;
    const good = recordOf(prefix, "svc", "X1");
    const bad: [string, Uint8Array | string][] = [
      [on("svc", "X1"), new Uint8Array([0xff, 0xfe, 0x00, 0x81])],
      [on("svc", "X1"), "{not json"],
      [on("svc", "X1"), "42"],
      [on("svc", "X1"), "null"],
      [on("svc", "X1"), JSON.stringify({ kind: "hello" })],
      [on("svc", "X1"), JSON.stringify({ kind: "up", instance: { ...good, weight: "100" } })],
      [on("svc", "X1"), JSON.stringify({ kind: "up", instance: { ...good, weight: 10_001 } })],
      [on("svc", "X1"), JSON.stringify({ kind: "up", instance: { ...good, subject: "evil.x" } })],
      [on("svc", "X1"), JSON.stringify({ kind: "hb", service: "svc", id: "X1", seq: -1 })],
      [on("svc", "X1"), JSON.stringify({ kind: "down", service: "svc", id: "X1" })],
      // A valid record, on the subject of another service or another instance.
      [on("other", "X1"), JSON.stringify({ kind: "up", instance: good })],
      [on("svc", "X2"), JSON.stringify({ kind: "up", instance: good })],
      [on("other", "X1"), JSON.stringify({ kind: "down", service: "svc", id: "X1", reason: "" })],
      // Larger than any presence message may be.
      [
        on("svc", "X1"),
        JSON.stringify({
          kind: "up",
          instance: { ...good, metadata: { pad: "x".repeat(PresenceLimits.maxMessageBytes) } },
        }),
      ],
    ];
    for (const [subject, data] of bad) t.nc.publish(subject, data);
    await t.nc.flush();
    await expect.poll(() => registry.stats.invalid).toBe(bad.length);
    expect(registry.stats).toMatchObject({
      announcements: 0,
      heartbeats: 0,
      downs: 0,
      kvWrites: 0,
    });
    expect(registry.instances()).toEqual([]);

    // Still working: a valid announcement on its own subject is written.
    t.nc.publish(on("svc", "X1"), JSON.stringify({ kind: "up", instance: good }));
    await expect.poll(() => kv.get("svc.X1").then((e) => e?.json())).toEqual(good);
    expect(await lastSeq(kv)).toBe(seq + 1);
    expect(registry.stats.invalid).toBe(bad.length);
  });
});
