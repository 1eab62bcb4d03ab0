import { startAgent } from "@natsmesh/agent";
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

let t: TestSetup;

beforeAll(async () => {
  t = await setup();
});
afterEach(killAllProcesses);
afterAll(() => cleanup(t));

function watch(prefix: string, ...args: string[]) {
  return startCli(["watch", ...args], { NATS_URL: t.server.url, MESH_PREFIX: prefix });
}

const TIME = "\\d\\d:\\d\\d:\\d\\d\\.\\d{3}";

describe("natsmesh watch", () => {
  it("prints the snapshot as up, then update and down lines; exits 0 on SIGTERM", async () => {
    const prefix = uniquePrefix();
    const kv = await createPresenceBucket(t.nc, prefix);
    const agent = await startAgent({
      servers: t.server.url,
      prefix,
      service: "echo",
      version: "1.0.0",
      zone: "z1",
      methods: { say: (p) => p },
    });
    await putRecord(kv, agent.record);
    const cli = watch(prefix);
    const id = agent.id;
    let at = await cli.waitFor(
      new RegExp(`^${TIME}  up      echo  ${id}  v1\\.0\\.0 weight=100 ready zone=z1$`),
    );

    await agent.update({ weight: 40 });
    await putRecord(kv, agent.record);
    at = await cli.waitFor(
      new RegExp(`  update  echo  ${id}  v1\\.0\\.0 weight=40 ready zone=z1$`),
      {
        from: at + 1,
      },
    );
    // The same record again is no change: nothing printed for it before the next event.
    await putRecord(kv, agent.record);
    const other = instanceRecord(prefix, "billing", { version: "2.0.0" });
    await putRecord(kv, other);
    const next = await cli.waitFor(/ {2}up {6}billing {2}/, { from: at + 1 });
    expect(next).toBe(at + 1);

    await agent.stop();
    await kv.delete(`echo.${id}`);
    await cli.waitFor(new RegExp(`^${TIME}  down    echo  ${id}  v1\\.0\\.0$`), { from: next + 1 });

    expect(await cli.stop("SIGTERM")).toBe(0);
    expect(cli.stderr).toEqual([]);
  });

  it("prints JSON lines with --json, and follows only one service when named", async () => {
    const prefix = uniquePrefix();
    const kv = await createPresenceBucket(t.nc, prefix);
    const cli = watch(prefix, "echo", "--json");
    const echo = instanceRecord(prefix, "echo");
    // The watch may start before or after these puts: snapshot or update, each shows once.
    await putRecord(kv, instanceRecord(prefix, "billing"));
    await putRecord(kv, echo);
    let at = await cli.waitFor((line) => line.includes(echo.id));
    expect(JSON.parse(cli.stdout[at]!)).toEqual({ type: "up", instance: echo });

    const changed = { ...echo, status: "draining" as const };
    await putRecord(kv, changed);
    at = await cli.waitFor(/"update"/, { from: at + 1 });
    expect(JSON.parse(cli.stdout[at]!)).toEqual({ type: "update", instance: changed });

    await kv.purge(`echo.${echo.id}`);
    at = await cli.waitFor(/"down"/, { from: at + 1 });
    expect(JSON.parse(cli.stdout[at]!)).toEqual({
      type: "down",
      key: `echo.${echo.id}`,
      service: "echo",
      id: echo.id,
    });
    expect(cli.stdout.some((line) => line.includes('"billing"'))).toBe(false);
    expect(await cli.stop("SIGINT")).toBe(0);
  });

  it("waits for a bucket that does not exist yet, and warns about invalid values", async () => {
    const prefix = uniquePrefix();
    const cli = watch(prefix);
    await cli.waitFor(/waiting for the bucket .*no registry has run for prefix/, {
      stream: "stderr",
    });
    const kv = await createPresenceBucket(t.nc, prefix);
    await kv.put("echo.junk", "[]");
    const record = instanceRecord(prefix, "echo");
    await putRecord(kv, record);
    await cli.waitFor(new RegExp(`  up      echo  ${record.id}  `), { timeoutMs: 15_000 });
    await cli.waitFor(/skipping invalid record at key "echo\.junk"/, { stream: "stderr" });
    expect(await cli.stop("SIGTERM")).toBe(0);
  });
});
