import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  cleanup,
  killAllProcesses,
  runProcess,
  setup,
  spawnProcess,
  startFixture,
  type TestSetup,
  uniquePrefix,
} from "@natsmesh/testing";
import { afterAll, describe, expect, it } from "vitest";

afterAll(() => killAllProcesses());

describe("setup() and cleanup()", () => {
  it("start a server and a connection, then end both, last first", async () => {
    const t = await setup({ tag: "s" });
    expect(t.prefix).toMatch(/^s[a-z0-9]+$/);
    const sub = t.nc.subscribe(`${t.prefix}.x`, { max: 1 });
    t.nc.publish(`${t.prefix}.x`, "1");
    for await (const m of sub) expect(m.string()).toBe("1");
    const order: string[] = [];
    await cleanup(t, { stop: async () => void order.push("stopped first") });
    order.push("then the setup");
    expect(order).toEqual(["stopped first", "then the setup"]);
    expect(t.nc.isClosed()).toBe(true);
    expect(t.server.running).toBe(false);
  });

  it("await using ends a setup at the end of its block", async () => {
    let kept: TestSetup | undefined;
    {
      await using t = await setup({ jetstream: false });
      kept = t;
      expect(t.nc.info?.jetstream).toBeFalsy();
    }
    expect(kept.nc.isClosed()).toBe(true);
    expect(kept.server.running).toBe(false);
    expect(existsSync(kept.server.storeDir)).toBe(false);
  });

  it("cleanup() ends everything even when one fails, then throws that failure", async () => {
    const ended: string[] = [];
    const boom = new Error("boom");
    await expect(
      cleanup(
        { close: async () => void ended.push("a") },
        {
          stop: async () => {
            throw boom;
          },
        },
        undefined,
      ),
    ).rejects.toBe(boom);
    expect(ended).toEqual(["a"]);
  });
});

describe("uniquePrefix()", () => {
  it("never repeats and refuses tags that are not a subject token", () => {
    const seen = new Set(Array.from({ length: 1000 }, () => uniquePrefix("x")));
    expect(seen.size).toBe(1000);
    expect(() => uniquePrefix("a.b")).toThrow(TypeError);
    expect(() => uniquePrefix("")).toThrow(TypeError);
  });
});

describe("child processes", () => {
  it("startFixture() waits for the first JSON line, and stop() ends the script", async () => {
    const script = join(tmpdir(), `fixture-${uniquePrefix()}.mjs`);
    await writeFile(
      script,
      `process.on("SIGTERM", () => { console.log("bye"); process.exit(3); });
       setInterval(() => {}, 1000);
       console.log(JSON.stringify({ pid: process.pid, arg: process.argv[2] }));`,
    );
    const f = await startFixture<{ pid: number; arg: string }>(script, ["hi"]);
    expect(f.info).toEqual({ pid: f.process.pid, arg: "hi" });
    expect(await f.stop()).toBe(3);
    expect(f.process.stdout).toContain("bye");
  });

  it("startFixture() fails with the script's output when it exits before its line", async () => {
    const script = join(tmpdir(), `fixture-${uniquePrefix()}.mjs`);
    await writeFile(script, `console.error("cannot start"); process.exit(1);`);
    await expect(startFixture(script)).rejects.toThrow(/cannot start/);
  });

  it("runProcess() returns the code and output; waitFor() is bounded", async () => {
    const r = await runProcess(process.execPath, ["-e", "console.log(process.env.X ?? 'unset')"], {
      env: { X: "set" },
    });
    expect(r).toEqual({ code: 0, stdout: "set", stderr: "" });
    const p = spawnProcess(process.execPath, ["-e", "setTimeout(() => {}, 5000)"]);
    await expect(p.waitFor(/never/, { timeoutMs: 100 })).rejects.toThrow(/within 100 ms/);
    await p.kill();
    expect(p.exited).toBe(true);
  });
});
