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
