import { until, waitUntil } from "@natsmesh/testing";
import { describe, expect, it } from "vitest";

describe("waitUntil()", () => {
  it("resolves true once the check holds, false when the time is up", async () => {
    let calls = 0;
    expect(await waitUntil(() => ++calls === 3, { timeoutMs: 5000, intervalMs: 1 })).toBe(true);
    expect(calls).toBe(3);
    expect(await waitUntil(() => false, { timeoutMs: 30, intervalMs: 5 })).toBe(false);
  });
});

describe("until()", () => {
  it("resolves once an async check holds", async () => {
    let calls = 0;
    await until("the third call", async () => ++calls === 3, { intervalMs: 1 });
    expect(calls).toBe(3);
  });

  it("fails with what it waited for when the time is up", async () => {
    await expect(until("the answer", () => false, { timeoutMs: 30 })).rejects.toThrow(
      "timed out after 30 ms waiting for the answer",
    );
  });

  it("describes what it saw last when `what` is a function", async () => {
    let seen = 0;
    await expect(
      until(
        () => `seven (saw ${seen})`,
        () => {
          seen++;
          return false;
        },
        { timeoutMs: 30, intervalMs: 100 },
      ),
      // Described after the checks ran (saw 0 would be a description made up front); how many
      // ran depends on the machine's load.
    ).rejects.toThrow(/waiting for seven \(saw [1-9]\d*\)$/);
  });

  it("passes a failing check's error on", async () => {
    const boom = new Error("boom");
    await expect(
      until("nothing", () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
  });
});
