import { Writable } from "node:stream";
import { startAgent } from "@natsmesh/agent";
import { type InstanceRecord, isMeshError, MeshError } from "@natsmesh/protocol";
import { startRegistry } from "@natsmesh/registry";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import { cleanup, setup, startFixture, type TestSetup, uniquePrefix } from "@natsmesh/testing";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

// A handler that throws something other than a MeshError answers the caller INTERNAL, without
// the detail; the detail, stack included, goes to the agent's log, which is on by default
// (pino JSON on stdout, LOG_LEVEL, default info), so whoever runs the agent sees why.

const AGENT = new URL("./fixtures/agent.mjs", import.meta.url);
const CRASH = "the crash method crashed, as asked";

let t: TestSetup;
let mesh: Mesh;
beforeAll(async () => {
  t = await setup({ tag: "log" });
  mesh = await connectMesh({ servers: t.server.url, prefix: t.prefix, presence: false });
});
afterAll(() => cleanup(t, mesh));

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

function logLines(lines: readonly string[]): LogLine[] {
  return lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as LogLine);
}

/** Runs the fixture agent with `env`, calls its crashing method, stops it, returns its log. */
async function crashOnce(env: Record<string, string>) {
  const agent = await startFixture<InstanceRecord>(AGENT, [], {
    env: { NATS_URL: t.server.url, MESH_PREFIX: t.prefix, AGENT_SERVICE: "crashy", ...env },
    unset: ["LOG_LEVEL"],
  });
  const err = await mesh.request("crashy", "crash", null).catch((e: unknown) => e);
  // Stopped and exited: everything it wrote is in.
  expect(await agent.stop()).toBe(0);
  return { id: agent.info.id, err, log: logLines(agent.process.stdout.slice(1)) };
}

describe("an agent's default logger", () => {
  it("logs a handler crash at error with its stack; the caller gets INTERNAL without it", async () => {
    const { id, err, log } = await crashOnce({});
    expect(isMeshError(err)).toBe(true);
    const e = err as MeshError;
    expect(e.code).toBe("INTERNAL");
    expect(e.data).toBeUndefined();
    expect(JSON.stringify({ message: e.message, data: e.data })).not.toContain("crashed");
    const crash = log.find((l) => l.level === 50);
    expect(crash).toMatchObject({
      component: "agent",
      service: "crashy",
      instance: id,
      method: "crash",
      err: { type: "Error", message: CRASH },
    });
    expect((crash?.err as { stack?: string } | undefined)?.stack).toContain("agent.mjs");
  });

  it("logs at LOG_LEVEL: fatal leaves the crash out", async () => {
    const { err, log } = await crashOnce({ LOG_LEVEL: "fatal" });
    expect((err as MeshError).code).toBe("INTERNAL");
    expect(log.filter((l) => l.level < 60)).toEqual([]);
  });
});

describe("a logger given in code", () => {
  const saved = process.env.LOG_LEVEL;
  afterEach(() => {
    if (saved === undefined) delete process.env.LOG_LEVEL;
    else process.env.LOG_LEVEL = saved;
  });

  it("gets the crash whatever LOG_LEVEL says", async () => {
    process.env.LOG_LEVEL = "silent";
    const lines: LogLine[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(JSON.parse(String(chunk)) as LogLine);
        done();
      },
    });
    await using agent = await startAgent({
      servers: t.server.url,
      prefix: t.prefix,
      service: "given",
      logger: pino({ level: "error" }, sink),
      methods: {
        crash: () => {
          throw new TypeError(CRASH);
        },
        refuse: () => {
          throw new MeshError("INSUFFICIENT_FUNDS", "not enough", { status: 409 });
        },
      },
    });
    await expect(mesh.request("given", "refuse", null)).rejects.toMatchObject({
      code: "INSUFFICIENT_FUNDS",
    });
    await expect(mesh.request("given", "crash", null)).rejects.toMatchObject({ code: "INTERNAL" });
    // A MeshError is the handler's answer, not a crash: only the crash is logged.
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 50,
      instance: agent.id,
      method: "crash",
      err: { type: "TypeError", message: CRASH },
    });
    expect((lines[0]?.err as { stack?: string } | undefined)?.stack).toMatch(/^TypeError: /);
  });

  it("an invalid LOG_LEVEL is a TypeError before connecting; a given logger does not read it", async () => {
    process.env.LOG_LEVEL = "loud";
    const prefix = uniquePrefix("lvl");
    await expect(
      startAgent({ servers: t.server.url, prefix, service: "x", methods: { m: () => 1 } }),
    ).rejects.toThrow(TypeError);
    await expect(startRegistry({ servers: t.server.url, prefix })).rejects.toThrow(TypeError);
    await using agent = await startAgent({
      servers: t.server.url,
      prefix,
      service: "x",
      methods: { m: () => 1 },
      logger: pino({ level: "silent" }),
    });
    expect(agent.id).toBeDefined();
  });
});
