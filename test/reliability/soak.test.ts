import { fileURLToPath } from "node:url";
import { runProcess } from "@natsmesh/testing";
import { describe, expect, it } from "vitest";

// Scenario 7, the CI version of `npm run soak`: 30 s at 2,000 calls/s with an agent replaced by
// SIGKILL every 10 s. Calls fail only around the kills, none outlives its deadline, no
// idempotent call fails, and memory does not grow.

const SOAK = fileURLToPath(new URL("../../bench/soak.mjs", import.meta.url));
const MIB = 2 ** 20;

interface SoakReport {
  passed: boolean;
  rate: number;
  calls: number;
  ok: number;
  failed: number;
  codes: Record<string, number>;
  skipped: number;
  failedIdempotent: number;
  unexplainedCount: number;
  unexplained: unknown[];
  kills: number;
  longestMs: number;
  memory: { growth: Record<"sdkRss" | "sdkHeap" | "registryRss" | "natsRss", number>; gc: boolean };
}

describe("soak (30 s, CI)", () => {
  it("keeps 2,000 calls/s with agents replaced every 10 s: errors only at the kills, memory flat", async () => {
    const run = await runProcess(
      process.execPath,
      [
        "--expose-gc",
        SOAK,
        "--minutes",
        "0.5",
        "--rate",
        "2000",
        "--replace-every",
        "10",
        "--json",
      ],
      { timeoutMs: 120_000 },
    );
    const report = JSON.parse(run.stdout.trim().split("\n").at(-1)!) as SoakReport;
    console.info(
      `[reliability] soak 30 s: ${report.calls} calls at ${report.rate}/s, ${report.ok} ok, ` +
        `${report.failed} failed ${JSON.stringify(report.codes)}, ${report.kills} agents killed, ` +
        `longest call ${report.longestMs} ms; growth (MiB) SDK heap ` +
        `${(report.memory.growth.sdkHeap / MIB).toFixed(1)}, SDK RSS ` +
        `${(report.memory.growth.sdkRss / MIB).toFixed(1)}, registry RSS ` +
        `${(report.memory.growth.registryRss / MIB).toFixed(1)}, nats-server RSS ` +
        `${(report.memory.growth.natsRss / MIB).toFixed(1)}`,
    );
    expect(run.code).toBe(0);
    expect(report.passed).toBe(true);
    expect(report.rate).toBeGreaterThanOrEqual(1900);
    expect(report.skipped).toBe(0);
    expect(report.kills).toBe(2);
    expect(report.unexplained).toEqual([]);
    expect(report.failedIdempotent).toBe(0);
    expect(report.memory.gc).toBe(true);
    expect(report.memory.growth.sdkHeap).toBeLessThan(20 * MIB);
    expect(report.memory.growth.registryRss).toBeLessThan(50 * MIB);
    expect(report.memory.growth.natsRss).toBeLessThan(64 * MIB);
  }, 150_000);
});
