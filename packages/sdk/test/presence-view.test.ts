import type { InstanceRecord, MeshError } from "@natsmesh/protocol";
import { type PresenceEntry, PresenceView, type PresenceWatchEvent } from "@natsmesh/sdk/internal";
import { beforeEach, describe, expect, it } from "vitest";
import { record } from "./fixtures.js";

const PREFIX = "mesh";

let revision = 0;
function put(r: InstanceRecord, at = ++revision): PresenceEntry {
  const value = new TextEncoder().encode(JSON.stringify(r));
  return { key: `${r.service}.${r.id}`, operation: "PUT", value, revision: at };
}
function del(key: string, operation: "DEL" | "PURGE" = "DEL"): PresenceEntry {
  return { key, operation, value: new Uint8Array(), revision: ++revision };
}

let events: string[];
let invalid: [string, MeshError][];
let view: PresenceView;

beforeEach(() => {
  events = [];
  invalid = [];
  view = new PresenceView(
    PREFIX,
    (e: PresenceWatchEvent) => events.push(`${e.type} ${e.key} w=${e.instance.weight}`),
    (key, error) => invalid.push([key, error]),
  );
});

describe("PresenceView", () => {
  it("reports a new record up, a changed one update, a deleted or purged one down", () => {
    view.apply(put(record("a")));
    view.apply(put(record("b")));
    view.apply(put(record("a", { weight: 5 })));
    view.apply(del("echo.a"));
    view.apply(del("echo.b", "PURGE"));
    expect(events).toEqual([
      "up echo.a w=100",
      "up echo.b w=100",
      "update echo.a w=5",
      "down echo.a w=5",
      "down echo.b w=100",
    ]);
  });

  it("is quiet for a replayed revision, an unchanged record and the delete of an unknown key", () => {
    const first = put(record("a"));
    view.apply(first);
    view.apply(first);
    view.apply(put(record("a")));
    view.apply(del("echo.never"));
    expect(events).toEqual(["up echo.a w=100"]);
  });

  it("compares records, not revisions, once the bucket was created anew", () => {
    view.apply(put(record("a"), 1));
    view.apply(put(record("a", { weight: 7 }), 1));
    expect(events).toEqual(["up echo.a w=100"]);
    view.forgetRevisions();
    view.apply(put(record("a", { weight: 7 }), 1));
    view.apply(put(record("a", { weight: 7 }), 1));
    expect(events).toEqual(["up echo.a w=100", "update echo.a w=7"]);
  });

  it("reconciles a new snapshot: what it lacks goes down, what it holds stays", () => {
    view.apply(put(record("a")));
    view.apply(put(record("b")));
    view.apply(put(record("c")));
    view.reconcile(new Set(["echo.a", "echo.b", "echo.c"]));
    expect(events).toHaveLength(3);
    // A re-created watch: only a is still there, b's delete marker is there too, c is gone.
    view.apply(del("echo.b"));
    view.reconcile(new Set(["echo.a", "echo.b"]));
    expect(events.slice(3)).toEqual(["down echo.b w=100", "down echo.c w=100"]);
    view.reconcile(new Set());
    expect(events.slice(5)).toEqual(["down echo.a w=100"]);
  });

  it("reports invalid entries and keeps the last valid record", () => {
    view.apply(put(record("a")));
    const junk = { ...put(record("a")), value: new TextEncoder().encode("{not json") };
    view.apply(junk);
    view.apply(put(record("b"), 99));
    view.apply({ ...put(record("x")), key: "echo.y" });
    view.apply(put(record("z", { weight: -1 })));
    expect(invalid.map(([key, err]) => [key, err.code])).toEqual([
      ["echo.a", "BAD_REQUEST"],
      ["echo.y", "BAD_REQUEST"],
      ["echo.z", "BAD_REQUEST"],
    ]);
    expect(events).toEqual(["up echo.a w=100", "up echo.b w=100"]);
    view.apply(del("echo.a"));
    expect(events.at(-1)).toBe("down echo.a w=100");
  });

  it("refuses records of another prefix", () => {
    const other = record("a", { subject: "other.inst.echo.a" });
    view.apply(put(other));
    expect(events).toEqual([]);
    expect(invalid).toHaveLength(1);
  });

  it("hands out frozen records", () => {
    let got: InstanceRecord | undefined;
    const v = new PresenceView(
      PREFIX,
      (e) => (got = e.instance),
      () => undefined,
    );
    v.apply(put(record("a")));
    expect(Object.isFrozen(got)).toBe(true);
  });
});

describe("PresenceView quotas", () => {
  const reasons = () =>
    invalid.map(([key, err]) => `${key} ${(err.data as { reason?: string } | undefined)?.reason}`);
  const bounded = (quotas: ConstructorParameters<typeof PresenceView>[3]) =>
    new PresenceView(
      PREFIX,
      (e) => events.push(`${e.type} ${e.key} w=${e.instance.weight}`),
      (key, error) => invalid.push([key, error]),
      quotas,
    );

  it("keeps at most maxRecords and maxInstancesPerService; what it holds stays, a down makes room", () => {
    const v = bounded({ quotas: { maxRecords: 3, maxInstancesPerService: 2 } });
    v.apply(put(record("a")));
    v.apply(put(record("b")));
    v.apply(put(record("c")));
    v.apply(put(record("x", { service: "billing" })));
    v.apply(put(record("y", { service: "other" })));
    expect(v.size).toBe(3);
    expect(reasons()).toEqual(["echo.c over-quota", "other.y over-quota"]);
    // Known instances still change.
    v.apply(put(record("a", { weight: 5 })));
    v.apply(del("echo.b"));
    v.apply(put(record("c")));
    expect(events.slice(-3)).toEqual(["update echo.a w=5", "down echo.b w=100", "up echo.c w=100"]);
    expect(v.size).toBe(3);
  });

  it("refuses a value over maxRecordBytes before decoding it, and keeps the record it had", () => {
    const v = bounded({ quotas: { maxRecordBytes: 1024 } });
    v.apply(put(record("a")));
    v.apply(
      put(
        record("a", {
          metadata: Object.fromEntries(["a", "b", "c", "d"].map((k) => [k, "x".repeat(250)])),
        }),
      ),
    );
    v.apply(put(record("b", { methods: Array.from({ length: 100 }, (_, i) => `method${i}`) })));
    expect(reasons()).toEqual(["echo.a too-large", "echo.b too-large"]);
    expect(events).toEqual(["up echo.a w=100"]);
  });

  it("with keys, takes only records they signed", async () => {
    const { createPresenceSigner, generateKeyPair, PresenceKeys } = await import(
      "@natsmesh/protocol"
    );
    const pair = await generateKeyPair();
    const v = bounded({ keys: new PresenceKeys(pair.jwks) });
    const signed = createPresenceSigner(pair.privateJwk).signedValue("echo.a", record("a"));
    v.apply({
      key: "echo.a",
      operation: "PUT",
      value: new TextEncoder().encode(signed),
      revision: 1,
    });
    v.apply(put(record("b")));
    expect(events).toEqual(["up echo.a w=100"]);
    expect(reasons()).toEqual(["echo.b unsigned"]);
  });
});
