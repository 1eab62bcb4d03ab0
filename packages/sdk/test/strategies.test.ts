import {
  EWMA_ALPHA,
  type Load,
  LoadTable,
  loadScore,
  selectLeastLoaded,
  selectRandom,
  selectRoundRobin,
  selectWeighted,
} from "@natsmesh/sdk/internal";
import { describe, expect, it } from "vitest";
import { ids, record, scripted } from "./fixtures.js";

const [a, b, c, d] = ["a", "b", "c", "d"].map((id) => record(id));
const four = [a!, b!, c!, d!];

describe("random", () => {
  it.each([
    [0, "a"],
    [0.2499, "a"],
    [0.25, "b"],
    [0.5, "c"],
    [0.9999, "d"],
  ])("picks by one uniform draw: %d gives %s", (draw, id) => {
    const random = scripted(draw);
    expect(selectRandom(four, random).id).toBe(id);
    expect(random.left).toBe(0);
  });
});

describe("weighted", () => {
  // Weights 1, 1, 2 lay the draw over [0, .25) [.25, .5) [.5, 1).
  const list = [record("a", { weight: 1 }), record("b", { weight: 1 }), record("c", { weight: 2 })];

  it.each([
    [0, "a"],
    [0.2499, "a"],
    [0.25, "b"],
    [0.4999, "b"],
    [0.5, "c"],
    [0.9999, "c"],
  ])("puts draw %d on %s", (draw, id) => {
    expect(selectWeighted(list, scripted(draw)).id).toBe(id);
  });

  it("follows large weights exactly", () => {
    const heavy = [record("x", { weight: 10_000 }), record("y", { weight: 1 })];
    expect(selectWeighted(heavy, scripted(10_000 / 10_001 - 1e-9)).id).toBe("x");
    expect(selectWeighted(heavy, scripted(10_000 / 10_001 + 1e-9)).id).toBe("y");
  });
});

describe("round-robin", () => {
  it("takes turns in id order, whatever order the candidates come in", () => {
    const picks = [0, 1, 2, 3, 4, 5].map((turn) => selectRoundRobin([c!, a!, b!], turn).id);
    expect(picks).toEqual(["a", "b", "c", "a", "b", "c"]);
  });

  it("keeps counting over a changed set", () => {
    expect(selectRoundRobin([a!, b!, c!, d!], 5).id).toBe("b");
    expect(selectRoundRobin([d!, b!], 5).id).toBe("d");
  });
});

describe("least-loaded", () => {
  const loads = (entries: Record<string, Partial<Load>>) =>
    new Map(
      Object.entries(entries).map(([id, l]) => [id, { inflight: 0, ewma: 0, gone: false, ...l }]),
    );

  it("scores (in flight + 1) × latency EWMA, and 0 without data", () => {
    expect(loadScore(undefined)).toBe(0);
    expect(loadScore({ inflight: 3, ewma: 10, gone: false })).toBe(40);
    expect(loadScore({ inflight: 0, ewma: 7, gone: false })).toBe(7);
  });

  it("draws two different candidates and keeps the lower score", () => {
    const seeded = loads({ a: { ewma: 50 }, b: { ewma: 10 }, c: { inflight: 5, ewma: 10 } });
    // First draw 0 → a; second over the other three, 0 → b: b (10) beats a (50).
    expect(selectLeastLoaded(four, seeded, scripted(0, 0)).id).toBe("b");
    // a and c: a (1 × 50) beats c (6 × 10).
    expect(selectLeastLoaded(four, seeded, scripted(0, 0.34)).id).toBe("a");
    // d and a: d has no data and scores 0.
    expect(selectLeastLoaded(four, seeded, scripted(0.75, 0)).id).toBe("d");
    // The second draw skips the first: first c (index 2), second index 2 of the rest → d.
    expect(selectLeastLoaded(four, seeded, scripted(0.5, 0.67)).id).toBe("d");
  });

  it("keeps the first drawn on a tie", () => {
    expect(selectLeastLoaded([a!, b!], loads({}), scripted(0.9, 0)).id).toBe("b");
    expect(selectLeastLoaded([a!, b!], loads({}), scripted(0, 0)).id).toBe("a");
  });

  it("learns loads from calls: in flight and a latency EWMA", () => {
    const table = new LoadTable();
    table.started("a");
    table.started("a");
    expect(table.get("a")).toEqual({ inflight: 2, ewma: 0, gone: false });
    table.finished("a", 100);
    expect(table.get("a")).toEqual({ inflight: 1, ewma: 100, gone: false });
    table.finished("a", 200);
    expect(table.get("a")?.ewma).toBeCloseTo(100 + EWMA_ALPHA * 100, 10);
    table.finished("unknown", 5);
    expect(table.get("unknown")).toBeUndefined();
  });

  it("forgets a gone instance at once when idle, else when its last call ends", () => {
    const table = new LoadTable();
    table.started("idle");
    table.finished("idle", 1);
    table.forget("idle");
    expect(table.get("idle")).toBeUndefined();
    table.started("busy");
    table.forget("busy");
    expect(table.get("busy")?.gone).toBe(true);
    table.finished("busy", 1);
    expect(table.size).toBe(0);
  });

  it("prefers the instance this client loads less, from the table", () => {
    const table = new LoadTable();
    for (const id of ["a", "b"]) {
      table.started(id);
      table.finished(id, id === "a" ? 10 : 100);
    }
    expect(ids([selectLeastLoaded([a!, b!], table, scripted(0.9, 0))])).toEqual(["a"]);
  });
});
