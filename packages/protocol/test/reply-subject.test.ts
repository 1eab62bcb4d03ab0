import {
  assertInboxPrefix,
  MAX_REPLY_SUBJECT_LENGTH,
  ReplySubjectRule,
  withDefaults,
} from "@natsmesh/protocol/internal";
import { describe, expect, it } from "vitest";

const rule = new ReplySubjectRule(["_INBOX", "_INBOX_checkout", "acme.inbox"]);

describe("ReplySubjectRule", () => {
  it.each([
    "_INBOX.abc",
    "_INBOX.Xy3Jm9Q2p8vZ0aB1cD2eF4.17",
    "_INBOX_checkout.n.1",
    "acme.inbox.x",
    `_INBOX.${"a".repeat(MAX_REPLY_SUBJECT_LENGTH - 7)}`,
  ])("allows %s", (reply) => {
    expect(rule.allows(reply)).toBe(true);
    expect(rule.allowsBytes(Buffer.from(reply))).toBe(true);
  });

  it.each([
    "",
    "_INBOX",
    "_INBOX.",
    "_INBOX..a",
    "_INBOX.a.",
    "_INBOX.*",
    "_INBOX.a.>",
    "_INBOX.a*b",
    "_INBOX.a b",
    "_INBOX.a\tb",
    "_INBOX.a\r\nPUB x 1",
    "_INBOX.é",
    "_INBOXY.a",
    "_inbox.a",
    "acme.inboxes.a",
    "acme.a",
    "$JS.API.STREAM.DELETE.KV_mesh_presence",
    "$KV.mesh_presence.billing.x",
    "mesh.presence.billing.x",
    `_INBOX.${"a".repeat(MAX_REPLY_SUBJECT_LENGTH - 6)}`,
  ])("refuses %j", (reply) => {
    expect(rule.allows(reply)).toBe(false);
    // As the bytes of a received reply subject, which the agent checks without decoding them.
    expect(rule.allowsBytes(Buffer.from(reply))).toBe(false);
  });

  it("refuses reply subject bytes that are not UTF-8 or not printable ASCII", () => {
    for (const bad of [[0x80], [0xff], [0xc3, 0xa9], [0x7f], [0x00]]) {
      expect(rule.allowsBytes(Uint8Array.from([...Buffer.from("_INBOX.a"), ...bad]))).toBe(false);
    }
  });
});

describe("assertInboxPrefix", () => {
  it.each(["_INBOX", "_INBOX_checkout", "a.b", "meshy", "x.mesh"])("accepts %s", (p) => {
    expect(assertInboxPrefix(p, "mesh")).toBe(p);
  });

  it.each([
    "",
    "$JS",
    "$KV.x",
    "mesh",
    "mesh.inbox",
    "_INBOX.*",
    "_INBOX.>",
    "a..b",
    "a b",
    42,
    undefined,
  ])("refuses %j for prefix mesh", (p) => {
    expect(() => assertInboxPrefix(p, "mesh")).toThrow(TypeError);
  });

  it("refuses a prefix above a dotted mesh prefix", () => {
    expect(() => assertInboxPrefix("acme", "acme.prod")).toThrow(TypeError);
    expect(assertInboxPrefix("acme_inbox", "acme.prod")).toBe("acme_inbox");
  });
});

describe("withDefaults", () => {
  it("lets an undefined option take its default and keeps everything else", () => {
    const defaults = { a: 1, b: "x" } as const;
    const options: { a?: number; b?: string; c?: boolean } = { a: undefined, b: "y", c: false };
    expect(withDefaults(defaults, options)).toEqual({ a: 1, b: "y", c: false });
    expect(options).toEqual({ a: undefined, b: "y", c: false });
  });
});
