import { defineConfig } from "vitest/config";

// Tests import the packages by name and run against their built `dist/` (npm test builds first),
// so a test exercises exactly what a user installs; spawned CLI processes use the same output.
export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
