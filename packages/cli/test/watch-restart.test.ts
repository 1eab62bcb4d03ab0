import {
  cleanup,
  createPresenceBucket,
  instanceRecord,
  killAllProcesses,
  putRecord,
  setup,
  type TestSetup,
  uniquePrefix,
} from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startCli } from "./cli-process.js";

// A server of its own: restarting it must not disturb other suites. setup()'s connection
// reconnects forever.
let t: TestSetup;

beforeAll(async () => {
  t = await setup();
});
afterEach(killAllProcesses);
afterAll(() => cleanup(t));

describe("natsmesh watch across a server restart", () => {
  it("keeps printing changes after the server comes back, without repeating the snapshot", async () => {
    const prefix = uniquePrefix();
    const kv = await createPresenceBucket(t.nc, prefix);
    const before = instanceRecord(prefix, "echo");
    await putRecord(kv, before);
    const cli = startCli(["watch"], { NATS_URL: t.server.url, MESH_PREFIX: prefix });
    await cli.waitFor(new RegExp(`  up      echo  ${before.id}  `));

    await t.server.restart();
    await cli.waitFor(/reconnected to NATS/, { stream: "stderr", timeoutMs: 15_000 });

    const after = instanceRecord(prefix, "echo");
    // The CLI has reconnected; this connection and JetStream may need a moment more: the put is
    // retried, bounded by the poll (the same record twice is no change to print).
    await expect
      .poll(
        () =>
          putRecord(kv, after).then(
            () => true,
            () => false,
          ),
        {
          timeout: 15_000,
          interval: 250,
        },
      )
      .toBe(true);
    const at = await cli.waitFor(new RegExp(`  up      echo  ${after.id}  `), {
      timeoutMs: 15_000,
    });
    await kv.delete(`echo.${before.id}`);
    await cli.waitFor(new RegExp(`  down    echo  ${before.id}`), { from: at + 1 });

    expect(cli.stdout.filter((line) => line.includes(`  up      echo  ${before.id}`))).toHaveLength(
      1,
    );
    expect(await cli.stop("SIGTERM")).toBe(0);
  });
});
