import { cleanup, setup, spawnProcess, type TestSetup, uniquePrefix } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixture } from "./helpers.js";

// A registry is a server: it logs by default (pino JSON on stdout at LOG_LEVEL, default info),
// so leadership and refused announcements are never invisible.

let t: TestSetup;
beforeAll(async () => {
  t = await setup({ tag: "rlog" });
});
afterAll(() => cleanup(t));

function registryProcess(prefix: string, env: Record<string, string>) {
  const args = [t.server.url, prefix, "5000", "3000"];
  return spawnProcess(process.execPath, [fixture("registry").pathname, ...args], {
    env,
    unset: ["LOG_LEVEL"],
  });
}

describe("a registry's default logger", () => {
  it("writes pino JSON on stdout at info", async () => {
    const prefix = uniquePrefix("rlog");
    await using registry = registryProcess(prefix, {});
    const at = await registry.waitFor(
      (l) => l.includes('"took the lead"') || l.includes('"registry started"'),
    );
    expect(JSON.parse(registry.stdout[at]!)).toMatchObject({
      level: 30,
      component: "registry",
      prefix,
    });
  });

  it("writes nothing below LOG_LEVEL", async () => {
    await using registry = registryProcess(uniquePrefix("rlog"), { LOG_LEVEL: "warn" });
    // The fixture's own line comes after startRegistry() resolved, so after its start-up logs.
    const at = await registry.waitFor(/"leader"/);
    expect(registry.stdout.slice(0, at + 1).map((l) => JSON.parse(l))).toEqual([
      { id: expect.any(String), leader: true },
    ]);
  });
});
