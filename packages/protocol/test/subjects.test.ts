import { isValidName, parseSubject, subjects } from "@natsmesh/protocol";
import { assertName, assertPrefix } from "@natsmesh/protocol/internal";
import { describe, expect, it } from "vitest";

const BAD_NAMES: unknown[] = [
  "",
  "a.b",
  "a b",
  "*",
  ">",
  "a*",
  "x".repeat(65),
  "é",
  "a\r\nb",
  "a\u0000",
  42,
  null,
  undefined,
  {},
];

describe("names", () => {
  it.each(BAD_NAMES)("refuses %j", (name) => {
    expect(isValidName(name)).toBe(false);
    expect(() => assertName(name, "service")).toThrow(TypeError);
  });

  it("accepts tokens of [A-Za-z0-9_-] up to 64 characters", () => {
    for (const name of ["a", "echo", "billing-v2", "A_b-9", "x".repeat(64)]) {
      expect(isValidName(name)).toBe(true);
    }
  });

  it("accepts dotted prefixes and refuses wildcards and empty tokens", () => {
    expect(() => assertPrefix("acme.prod")).not.toThrow();
    for (const p of ["", ".", "a..b", "a.*", "a.>", "a b", 7]) {
      expect(() => assertPrefix(p)).toThrow(TypeError);
    }
  });
});

describe("subjects", () => {
  const s = subjects("mesh");

  it("builds every subject of the contract", () => {
    expect(s.service("echo", "say")).toBe("mesh.svc.echo.say");
    expect(s.serviceWildcard("echo")).toBe("mesh.svc.echo.*");
    expect(s.instance("echo", "ID1", "say")).toBe("mesh.inst.echo.ID1.say");
    expect(s.instanceBase("echo", "ID1")).toBe("mesh.inst.echo.ID1");
    expect(s.instanceWildcard("echo", "ID1")).toBe("mesh.inst.echo.ID1.*");
    expect(s.presence("echo", "ID1")).toBe("mesh.presence.echo.ID1");
    expect(s.presenceWildcard()).toBe("mesh.presence.*.*");
    expect(s.presenceSync()).toBe("mesh.presence.sync");
    expect(subjects().prefix).toBe("mesh");
    expect(subjects("acme.prod").service("a", "b")).toBe("acme.prod.svc.a.b");
  });

  it("refuses invalid names before anything reaches NATS", () => {
    expect(() => s.service("ec.ho", "say")).toThrow(TypeError);
    expect(() => s.service("echo", "*")).toThrow(TypeError);
    expect(() => s.instance("echo", ">", "say")).toThrow(TypeError);
    expect(() => s.presence("", "x")).toThrow(TypeError);
    expect(() => subjects("bad prefix")).toThrow(TypeError);
  });

  it("parses what it builds and nothing else", () => {
    expect(parseSubject("mesh.svc.echo.say")).toEqual({
      kind: "svc",
      service: "echo",
      method: "say",
    });
    expect(parseSubject("mesh.inst.echo.ID.say")).toEqual({
      kind: "inst",
      service: "echo",
      id: "ID",
      method: "say",
    });
    expect(parseSubject("mesh.presence.echo.ID")).toEqual({
      kind: "presence",
      service: "echo",
      id: "ID",
    });
    expect(parseSubject("mesh.presence.sync")).toEqual({ kind: "sync" });
    expect(parseSubject("acme.prod.svc.a.b", "acme.prod")).toEqual({
      kind: "svc",
      service: "a",
      method: "b",
    });
    for (const bad of [
      "other.svc.echo.say",
      "mesh.svc.echo",
      "mesh.svc.echo.say.extra",
      "mesh.inst.echo.say",
      "mesh.svc.*.say",
      "mesh.foo.a.b",
      "mesh",
      "",
      "meshy.svc.a.b",
    ]) {
      expect(parseSubject(bad)).toBeUndefined();
    }
  });
});
