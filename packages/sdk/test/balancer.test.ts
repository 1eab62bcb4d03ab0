import { Balancer } from "@natsmesh/sdk/internal";
import { describe, expect, it } from "vitest";
import { record, scripted } from "./fixtures.js";

const live = [record("c"), record("a"), record("b")];

describe("Balancer.pick", () => {
  it("returns undefined when nothing matches and the only candidate without a draw", () => {
    const balancer = new Balancer(scripted());
    expect(balancer.pick("random", "echo", "nope", live, {}, undefined)).toBeUndefined();
    const one = balancer.pick(
      "weighted",
      "echo",
      "say",
      live,
      { version: "1.0.0" },
      new Set(["a", "b"]),
    );
    expect(one?.id).toBe("c");
  });

  it("runs each strategy over the candidates with its own draws", () => {
    expect(new Balancer(scripted(0.5)).pick("random", "echo", "say", live, {}, undefined)?.id).toBe(
      "a",
    );
    expect(
      new Balancer(scripted(0.9)).pick("weighted", "echo", "say", live, {}, undefined)?.id,
    ).toBe("b");
    // Nothing loaded yet: every score is 0 and the first drawn wins.
    const leastLoaded = new Balancer(scripted(0.5, 0));
    expect(leastLoaded.pick("least-loaded", "echo", "say", live, {}, undefined)?.id).toBe("a");
  });

  it("keeps round-robin turns per service, in id order", () => {
    const balancer = new Balancer(scripted());
    const other = [record("y", { service: "billing" }), record("x", { service: "billing" })];
    const turns = [
      balancer.pick("round-robin", "echo", "say", live, {}, undefined)?.id,
      balancer.pick("round-robin", "billing", "say", other, {}, undefined)?.id,
      balancer.pick("round-robin", "echo", "say", live, {}, undefined)?.id,
      balancer.pick("round-robin", "echo", "say", live, {}, undefined)?.id,
      balancer.pick("round-robin", "billing", "say", other, {}, undefined)?.id,
      balancer.pick("round-robin", "echo", "say", live, {}, undefined)?.id,
    ];
    expect(turns).toEqual(["a", "x", "b", "c", "y", "a"]);
  });

  it("sends least-loaded calls away from what its own calls found slow or busy", () => {
    const balancer = new Balancer(scripted(0, 0, 0, 0));
    balancer.started("a");
    balancer.finished("a", 50);
    balancer.started("b");
    balancer.finished("b", 10);
    // Candidates in presence order c, a, b; draws 0, 0 compare c (no data: 0) with a (50).
    expect(balancer.pick("least-loaded", "echo", "say", live, {}, undefined)?.id).toBe("c");
    balancer.started("c");
    balancer.finished("c", 100);
    balancer.started("c");
    // c now scores (1 + 1) × 100 = 200; a 50 wins.
    expect(balancer.pick("least-loaded", "echo", "say", live, {}, undefined)?.id).toBe("a");
  });

  it("forgets the load of instances that went", () => {
    const balancer = new Balancer(scripted(0, 0));
    balancer.started("c");
    balancer.finished("c", 1000);
    balancer.forget("c");
    // c has no data again: it scores 0 and beats a's (absent) 0 as the first drawn.
    expect(balancer.pick("least-loaded", "echo", "say", live, {}, undefined)?.id).toBe("c");
  });
});
