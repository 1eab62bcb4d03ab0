import { parseScope, scopeAllows, scopeAllowsAnnounce, scopeAllowsStats } from "@natsmesh/protocol";
import { describe, expect, it } from "vitest";

describe("scopeAllows", () => {
  it.each([
    ["*", "billing", "charge", true],
    ["billing.*", "billing", "charge", true],
    ["billing.*", "billingx", "charge", false],
    ["billing.*", "shipping", "charge", false],
    ["*.read", "billing", "read", true],
    ["*.read", "billing", "write", false],
    ["*.*", "a", "b", true],
    ["billing.charge", "billing", "charge", true],
    ["billing.charge", "billing", "refund", false],
    ["billing.refund billing.charge", "billing", "charge", true],
    ["  billing.charge\tother.x  ", "billing", "charge", true],
    ["", "billing", "charge", false],
    ["billing", "billing", "charge", false],
    ["billing.charge.extra", "billing", "charge", false],
    ["announce:billing", "billing", "charge", false],
    ["stats:billing", "billing", "charge", false],
    ["stats:*", "billing", "charge", false],
    ["bill*.charge", "billing", "charge", false],
    [".charge", "billing", "charge", false],
  ])("%j allows %s.%s: %s", (scope, service, method, allowed) => {
    expect(scopeAllows(scope, service, method)).toBe(allowed);
    expect(scopeAllows(parseScope(scope), service, method)).toBe(allowed);
  });

  it("parses only strings", () => {
    expect(parseScope(undefined)).toEqual([]);
    expect(parseScope(["a.b"])).toEqual([]);
  });
});

describe("scopeAllowsAnnounce", () => {
  it("needs announce:<service> exactly, or announce:*", () => {
    expect(scopeAllowsAnnounce("announce:billing", "billing")).toBe(true);
    expect(scopeAllowsAnnounce("announce:*", "billing")).toBe(true);
    expect(scopeAllowsAnnounce("announce:billing", "shipping")).toBe(false);
    expect(scopeAllowsAnnounce("*", "billing")).toBe(false);
    expect(scopeAllowsAnnounce("billing.*", "billing")).toBe(false);
    expect(scopeAllowsAnnounce("announce:bill", "billing")).toBe(false);
  });
});

describe("scopeAllowsStats", () => {
  it("needs stats:<service> exactly, or stats:*; calling rights are not enough", () => {
    expect(scopeAllowsStats("stats:billing", "billing")).toBe(true);
    expect(scopeAllowsStats("stats:*", "billing")).toBe(true);
    expect(scopeAllowsStats(["x.y", "stats:*"], "billing")).toBe(true);
    expect(scopeAllowsStats("stats:billing", "shipping")).toBe(false);
    expect(scopeAllowsStats("*", "billing")).toBe(false);
    expect(scopeAllowsStats("billing.*", "billing")).toBe(false);
    expect(scopeAllowsStats("announce:billing", "billing")).toBe(false);
    expect(scopeAllowsStats("stats:bill", "billing")).toBe(false);
  });
});
