import {
  type InstanceRecord,
  parsePresenceEntry,
  parsePresenceKey,
  parsePresenceMessage,
  presenceBucket,
  presenceKey,
  registryBucket,
  validateInstanceRecord,
} from "@natsmesh/protocol";
import { describe, expect, it } from "vitest";

function record(): InstanceRecord {
  return {
    v: 1,
    id: "ABCDEF123",
    service: "echo",
    version: "1.2.3",
    weight: 100,
    status: "ready",
    methods: ["say", "shout"],
    subject: "mesh.inst.echo.ABCDEF123",
    host: "box-1",
    pid: 4242,
    zone: "eu-1",
    metadata: { team: "core", "app.kubernetes.io/name": "echo" },
    startedAt: 1764000000000,
  };
}

// Every field set wrong in turn; each must be refused on its own.
const WRONG: [string, unknown][] = [
  ["v", 2],
  ["v", undefined],
  ["id", "a.b"],
  ["id", ""],
  ["id", 7],
  ["service", "*"],
  ["service", "x".repeat(65)],
  ["version", ""],
  ["version", "1 2"],
  ["version", "v".repeat(65)],
  ["version", 1],
  ["weight", -1],
  ["weight", 10001],
  ["weight", 1.5],
  ["weight", "100"],
  ["status", "up"],
  ["status", null],
  ["methods", "say"],
  ["methods", ["ok", "b.ad"]],
  ["methods", Array.from({ length: 257 }, (_, i) => `m${i}`)],
  ["subject", "mesh.inst.other.ABCDEF123"],
  ["subject", "evil.>"],
  ["host", "h".repeat(256)],
  ["host", 1],
  ["pid", -1],
  ["pid", "1"],
  ["pid", 2 ** 32],
  ["zone", "eu 1"],
  ["zone", 5],
  ["metadata", null],
  ["metadata", ["a"]],
  ["metadata", { k: 1 }],
  ["metadata", { "bad key": "v" }],
  ["metadata", { k: "v".repeat(257) }],
  ["metadata", Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, "v"]))],
  ["startedAt", "yesterday"],
  ["startedAt", -5],
];

describe("validateInstanceRecord", () => {
  it("accepts a valid record and returns a clean copy", () => {
    const input = { ...record(), extra: "dropped" };
    const out = validateInstanceRecord(input);
    expect(out.ok).toBe(true);
    if (out.ok) {
      expect(out.value).toEqual(record());
      expect(out.value).not.toBe(input);
      expect("extra" in out.value).toBe(false);
    }
  });

  it("keeps a metadata key named __proto__ as data", () => {
    const metadata = JSON.parse('{"__proto__":"x","a":"b"}');
    const out = validateInstanceRecord({ ...record(), metadata });
    expect(out.ok && Object.keys(out.value.metadata)).toEqual(["__proto__", "a"]);
    expect(out.ok && Object.getPrototypeOf(out.value.metadata)).toBe(Object.prototype);
  });

  it("accepts a record without zone and with weight 0", () => {
    const { zone: _zone, ...rest } = record();
    expect(validateInstanceRecord({ ...rest, weight: 0 }).ok).toBe(true);
  });

  it.each(WRONG)("refuses %s = %j with BAD_REQUEST, without throwing", (field, value) => {
    const out = validateInstanceRecord({ ...record(), [field]: value });
    expect(out.ok).toBe(false);
    if (!out.ok) {
      expect(out.error.code).toBe("BAD_REQUEST");
      expect(out.error.message).toContain(field === "v" ? "instance.v" : field);
    }
  });

  it.each([null, undefined, 1, "x", [], true])("refuses %j as a record", (value) => {
    expect(validateInstanceRecord(value).ok).toBe(false);
  });

  it("checks the subject against the mesh prefix", () => {
    const r = { ...record(), subject: "acme.inst.echo.ABCDEF123" };
    expect(validateInstanceRecord(r, "acme").ok).toBe(true);
    expect(validateInstanceRecord(r, "mesh").ok).toBe(false);
  });
});

describe("parsePresenceMessage", () => {
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

  it("parses up, hb and down", () => {
    const up = parsePresenceMessage(enc({ kind: "up", instance: record() }));
    expect(up.ok && up.value.kind).toBe("up");
    const hb = parsePresenceMessage(
      enc({ kind: "hb", service: "echo", id: "ABC", seq: 3, inflight: 0, status: "ready" }),
    );
    expect(hb).toEqual({
      ok: true,
      value: { kind: "hb", service: "echo", id: "ABC", seq: 3, inflight: 0, status: "ready" },
    });
    const down = parsePresenceMessage(
      enc({ kind: "down", service: "echo", id: "ABC", reason: "stop" }),
    );
    expect(down.ok && down.value.kind).toBe("down");
  });

  it("reads every status, and the concurrency limit of a heartbeat", () => {
    for (const status of ["ready", "draining", "saturated", "unready"]) {
      const up = parsePresenceMessage(enc({ kind: "up", instance: { ...record(), status } }));
      expect(up.ok && up.value.kind === "up" && up.value.instance.status).toBe(status);
    }
    const hb = { kind: "hb", service: "e", id: "A", seq: 1, inflight: 256, status: "saturated" };
    expect(parsePresenceMessage(enc({ ...hb, limit: 256 }))).toEqual({
      ok: true,
      value: { ...hb, limit: 256 },
    });
    expect(parsePresenceMessage(enc({ ...hb, limit: 0 })).ok).toBe(false);
  });

  it("keeps an instance's presence secret on every kind, and only a well-formed one", () => {
    const secret = "Zm9vYmFyYmF6cXV4cXV1eA";
    for (const body of [
      { kind: "up", instance: record(), secret },
      { kind: "hb", service: "echo", id: "ABC", seq: 3, inflight: 0, status: "ready", secret },
      { kind: "down", service: "echo", id: "ABC", reason: "stop", secret },
    ]) {
      const out = parsePresenceMessage(enc(body));
      expect(out.ok && out.value.secret).toBe(secret);
      for (const bad of ["short", "x".repeat(129), "has spaces in it....", 42, null]) {
        expect(parsePresenceMessage(enc({ ...body, secret: bad })).ok).toBe(false);
      }
    }
  });

  it.each([
    ["not JSON", new TextEncoder().encode("{nope")],
    ["invalid UTF-8", new Uint8Array([0x7b, 0xff, 0x7d])],
    ["empty", new Uint8Array(0)],
    ["too large", new Uint8Array(70 * 1024).fill(0x20)],
    ["unknown kind", enc({ kind: "boom" })],
    ["array", enc([1])],
    ["hb without seq", enc({ kind: "hb", service: "echo", id: "A", inflight: 0, status: "ready" })],
    [
      "hb with negative inflight",
      enc({ kind: "hb", service: "e", id: "A", seq: 1, inflight: -1, status: "ready" }),
    ],
    [
      "down with long reason",
      enc({ kind: "down", service: "e", id: "A", reason: "r".repeat(300) }),
    ],
    ["up with bad record", enc({ kind: "up", instance: { ...record(), weight: 1e9 } })],
  ])("refuses %s with BAD_REQUEST", (_label, bytes) => {
    const out = parsePresenceMessage(bytes);
    expect(out.ok).toBe(false);
    if (!out.ok) expect(out.error.code).toBe("BAD_REQUEST");
  });
});

describe("parsePresenceEntry", () => {
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

  it("returns the clean record of a valid entry", () => {
    const out = parsePresenceEntry("echo.ABCDEF123", enc({ ...record(), extra: 1 }));
    expect(out).toEqual({ ok: true, value: record() });
  });

  it.each([
    ["a key that is not <service>.<id>", "echo", enc(record())],
    ["a value that is not JSON", "echo.ABCDEF123", new TextEncoder().encode("{not json")],
    ["a value that is not UTF-8", "echo.ABCDEF123", new Uint8Array([0x22, 0xff, 0x22])],
    ["an empty value", "echo.ABCDEF123", new Uint8Array()],
    ["an invalid record", "echo.ABCDEF123", enc({ ...record(), weight: -1 })],
    ["the record of another instance", "echo.OTHER", enc(record())],
    ["the record of another service", "billing.ABCDEF123", enc(record())],
    [
      "a record of another prefix",
      "echo.ABCDEF123",
      enc({ ...record(), subject: "x.inst.echo.ABCDEF123" }),
    ],
    [
      "an oversized value",
      "echo.ABCDEF123",
      new TextEncoder().encode(`${JSON.stringify(record())}${" ".repeat(70_000)}`),
    ],
  ])("refuses %s with BAD_REQUEST", (_label, key, value) => {
    const out = parsePresenceEntry(key, value);
    expect(out.ok).toBe(false);
    if (!out.ok) expect(out.error.code).toBe("BAD_REQUEST");
  });

  it("checks the record against the mesh prefix it is given", () => {
    const value = enc({ ...record(), subject: "acme.inst.echo.ABCDEF123" });
    expect(parsePresenceEntry("echo.ABCDEF123", value, "acme").ok).toBe(true);
    expect(parsePresenceEntry("echo.ABCDEF123", value).ok).toBe(false);
  });
});

describe("keys and buckets", () => {
  it("builds and parses presence keys", () => {
    expect(presenceKey("echo", "ID")).toBe("echo.ID");
    expect(parsePresenceKey("echo.ID")).toEqual({ service: "echo", id: "ID" });
    for (const bad of ["echo", ".ID", "echo.", "a.b.c", "e*.x"])
      expect(parsePresenceKey(bad)).toBeUndefined();
    expect(() => presenceKey("a.b", "c")).toThrow(TypeError);
  });

  it("names the buckets after the prefix", () => {
    expect(presenceBucket()).toBe("mesh_presence");
    expect(registryBucket("acme.prod")).toBe("acme_prod_registry");
  });
});
