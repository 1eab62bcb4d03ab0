import { delay, settledWithin, withTimeout } from "@natsmesh/protocol/internal";
import { describe, expect, it } from "vitest";

const never = new Promise<never>(() => undefined);

describe("delay", () => {
  it("resolves true once the time has passed", async () => {
    const start = performance.now();
    expect(await delay(20)).toBe(true);
    expect(performance.now() - start).toBeGreaterThanOrEqual(15);
  });

  it("resolves false at once when the signal aborts, before or during the wait", async () => {
    expect(await delay(60_000, AbortSignal.abort())).toBe(false);
    const controller = new AbortController();
    const waiting = delay(60_000, controller.signal);
    controller.abort();
    expect(await waiting).toBe(false);
  });
});

describe("settledWithin", () => {
  it("is true when the promise settles first, resolved or rejected", async () => {
    expect(await settledWithin(Promise.resolve(1), 60_000)).toBe(true);
    expect(await settledWithin(Promise.reject(new Error("no")), 60_000)).toBe(true);
  });

  it("is false when the time runs out first", async () => {
    expect(await settledWithin(never, 10)).toBe(false);
  });
});

describe("withTimeout", () => {
  it("settles as the promise does when it is in time", async () => {
    expect(await withTimeout(Promise.resolve("v"), 60_000, "reading")).toBe("v");
    await expect(withTimeout(Promise.reject(new Error("own")), 60_000, "reading")).rejects.toThrow(
      "own",
    );
  });

  it("rejects, saying what timed out, when it is not", async () => {
    await expect(withTimeout(never, 10, "reading the bucket")).rejects.toThrow(
      "reading the bucket timed out after 10 ms",
    );
  });
});
