import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runProcess } from "@natsmesh/testing";
import { afterAll, describe, expect, it } from "vitest";

// `npx natsmesh` the way a new user runs it: a fresh clone, `npm ci`, `npm run build`. It
// clones the committed HEAD (what a user's clone gets), so commit before relying on it.
const root = fileURLToPath(new URL("..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "natsmesh-clone-"));
const clone = join(dir, "natsmesh");

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a command in the clone, bounded; fails with its output when it does not exit 0. */
async function inClone(command: string, args: string[], timeoutMs: number) {
  const r = await runProcess(command, args, { cwd: clone, timeoutMs });
  if (r.code !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

describe("a fresh clone", () => {
  it("runs `npx natsmesh` right after `npm ci && npm run build`", {
    timeout: 900_000,
  }, async () => {
    const cloned = await runProcess("git", ["clone", "--quiet", root, clone], {
      timeoutMs: 60_000,
    });
    expect(cloned.code, cloned.stderr).toBe(0);
    // The local npm cache first: the test needs the registry only for what it lacks.
    const ci = await inClone("npm", ["ci", "--prefer-offline", "--no-audit", "--no-fund"], 480_000);
    // Node 20 is supported: no dependency may ask for a newer one.
    expect(`${ci.stdout}\n${ci.stderr}`).not.toMatch(/EBADENGINE|Unsupported engine/);
    // Offline, so npx could never fetch some other "natsmesh" from the registry instead.
    const npx = (args: string[]) =>
      runProcess("npx", ["natsmesh", ...args], {
        cwd: clone,
        env: { npm_config_offline: "true" },
        timeoutMs: 60_000,
      });

    // Linked by `npm ci` before anything is built, and it says what to do.
    const early = await npx(["--help"]);
    expect(early.code).toBe(1);
    expect(early.stderr).toContain("the CLI is not built yet");
    expect(early.stderr).toContain("Run `npm run build`");

    await inClone("npm", ["run", "build"], 300_000);
    const help = await npx(["--help"]);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: natsmesh \[options\] \[command\]$/m);
    expect(help.stdout).toMatch(/^ {2}ls \[service\] +\S/m);
    for (const command of [
      /^ {2}up +\S/m,
      /^ {2}agent <module> +\S/m,
      /^ {2}call <service\.method> \[json\] +\S/m,
    ]) {
      expect(help.stdout).toMatch(command);
    }
    const call = await npx(["call", "--help"]);
    expect(call.code, call.stderr).toBe(0);
    expect(call.stdout).toMatch(/^Exit codes:$/m);
    // `npm start` builds, then runs `natsmesh up`: with --help it proves the wiring without a mesh.
    const start = await inClone("npm", ["start", "--", "--help"], 300_000);
    expect(start.stdout).toContain("Usage: natsmesh up [options]");
    const usage = await npx(["nope"]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^natsmesh: unknown command 'nope'/);
  });
});
