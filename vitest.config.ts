import { configDefaults, defineConfig } from "vitest/config";

// Tests import the packages by name and run against their built `dist/` (npm test builds first),
// so a test exercises exactly what a user installs; spawned CLI processes use the same output.
//
// Two projects, one after the other: first every package and cross-package test, then the
// reliability suite (test/reliability/), one file at a time and alone, because its scenarios
// hold a load of more than 1,000 calls/s against several processes and measure what happens.
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Agents and registries log at info by default; tests (and the fixtures they spawn) stay
    // quiet unless they set LOG_LEVEL or a logger themselves, as the logging tests do.
    env: { LOG_LEVEL: "silent" },
    // expect.poll() waits for something that must happen; how long it may take depends on the
    // machine's load, not on correctness (vitest's 1 s default fails on a busy 2-core host).
    // A test whose point is a time bound passes its own timeout.
    expect: { poll: { timeout: 10_000 } },
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts"],
          exclude: [...configDefaults.exclude, "test/reliability/**"],
        },
      },
      {
        extends: true,
        test: {
          name: "reliability",
          include: ["test/reliability/**/*.test.ts"],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
          testTimeout: 120_000,
        },
      },
    ],
  },
});
