import { candidates, checkVersionFilter, VersionMatcher } from "@natsmesh/sdk/internal";
import { describe, expect, it } from "vitest";
import { ids, record } from "./fixtures.js";

const pick = (live: Parameters<typeof candidates>[0], filter = {}, exclude?: Set<string>) =>
  ids(candidates(live, "say", filter, exclude, new VersionMatcher()));

describe("candidates", () => {
  it("keeps ready instances with weight > 0 that host the method", () => {
    const live = [
      record("ok"),
      record("draining", { status: "draining" }),
      record("saturated", { status: "saturated" }),
      record("weight0", { weight: 0 }),
      record("other-method", { methods: ["shout"] }),
      record("tried"),
    ];
    expect(pick(live, {}, new Set(["tried"]))).toEqual(["ok"]);
  });

  it("matches an exact version, a semver range, and nothing else", () => {
    const live = [
      record("v1", { version: "1.2.3" }),
      record("v2", { version: "2.0.0" }),
      record("pre", { version: "1.3.0-beta.1" }),
      record("odd", { version: "build-7" }),
    ];
    expect(pick(live, { version: "1.2.3" })).toEqual(["v1"]);
    expect(pick(live, { version: "^1" })).toEqual(["v1"]);
    expect(pick(live, { version: ">=1.2 <3" })).toEqual(["v1", "v2"]);
    // A version that is not semver only matches itself.
    expect(pick(live, { version: "build-7" })).toEqual(["odd"]);
    expect(pick(live, { version: "^3" })).toEqual([]);
  });

  it("matches every metadata entry exactly", () => {
    const live = [
      record("a", { metadata: { tier: "gold", region: "eu" } }),
      record("b", { metadata: { tier: "gold" } }),
      record("c", { metadata: { tier: "Gold", region: "eu" } }),
    ];
    expect(pick(live, { metadata: { tier: "gold" } })).toEqual(["a", "b"]);
    expect(pick(live, { metadata: { tier: "gold", region: "eu" } })).toEqual(["a"]);
    expect(pick(live, { metadata: { tier: "silver" } })).toEqual([]);
  });

  it("prefers the zone and spills over to all when it has none", () => {
    const live = [
      record("z1a", { zone: "z1" }),
      record("z2", { zone: "z2" }),
      record("none"),
      record("z1b", { zone: "z1" }),
    ];
    expect(pick(live, { zone: "z1" })).toEqual(["z1a", "z1b"]);
    expect(pick(live, { zone: "z3" })).toEqual(["z1a", "z2", "none", "z1b"]);
    // The zone is a preference after the constraints: z1's only instance is draining.
    const drainingZone = [
      record("z1", { zone: "z1", status: "draining" }),
      record("z2", { zone: "z2" }),
    ];
    expect(pick(drainingZone, { zone: "z1" })).toEqual(["z2"]);
  });

  it("applies constraints together, keeping presence order", () => {
    const live = [
      record("a", { version: "1.0.0", metadata: { t: "x" }, zone: "z1" }),
      record("b", { version: "2.0.0", metadata: { t: "x" }, zone: "z1" }),
      record("c", { version: "1.5.0", metadata: { t: "x" }, zone: "z2" }),
    ];
    expect(pick(live, { version: "^1", metadata: { t: "x" }, zone: "z2" })).toEqual(["c"]);
  });
});

describe("VersionMatcher", () => {
  it("answers the same from its cache and stays bounded", () => {
    const matcher = new VersionMatcher();
    expect(matcher.matches("1.0.0", "^1")).toBe(true);
    expect(matcher.matches("1.0.0", "^1")).toBe(true);
    for (let i = 0; i < 10_500; i++) matcher.matches(`1.0.${i}`, "^1");
    expect(matcher.matches("2.0.0", "^1")).toBe(false);
  });
});

describe("checkVersionFilter", () => {
  it("takes versions and ranges, refuses the rest with a TypeError", () => {
    for (const ok of ["1.2.3", "^1", ">=2.1 <3", "1.x"]) expect(checkVersionFilter(ok)).toBe(ok);
    for (const bad of ["not a version", "1.2.3.4", 1, undefined]) {
      expect(() => checkVersionFilter(bad)).toThrow(TypeError);
    }
  });
});
