import { jetstreamManager } from "@nats-io/jetstream";
import { type Agent, startAgent } from "@natsmesh/agent";
import { listDeadLetters, type StoredDeadLetter } from "@natsmesh/protocol/internal";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup, waitUntil } from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll } from "vitest";

/** Small streams: every test has its own prefix, so its own pair of streams on the server. */
export const streams = { maxBytes: 64 * 1024 ** 2, deadLetterMaxBytes: 16 * 1024 ** 2 };

type Options = Parameters<typeof startAgent>[0];

/** The server, agents and clients of one event test file, ended after each test or the file. */
export interface EventSuite {
  readonly t: TestSetup;
  agent(prefix: string, options: Omit<Options, "prefix" | "servers">): Promise<Agent>;
  mesh(prefix: string): Promise<Mesh>;
  deadLetters(prefix: string, service?: string): Promise<StoredDeadLetter[]>;
}

/** Registers the hooks of an event test file: one server, agents and meshes ended per test. */
export function eventSuite(tag: string): EventSuite {
  let t: TestSetup | undefined;
  const started: (Agent | Mesh)[] = [];
  beforeAll(async () => {
    t = await setup({ tag });
  });
  afterEach(async () => {
    await cleanup(...started.splice(0));
  });
  afterAll(() => cleanup(t));
  const setupOf = () => {
    if (t === undefined) throw new Error("the suite's server is not started");
    return t;
  };
  return {
    get t() {
      return setupOf();
    },
    async agent(prefix, options) {
      const a = await startAgent({ servers: setupOf().server.url, prefix, streams, ...options });
      started.push(a);
      return a;
    },
    async mesh(prefix) {
      const m = await connectMesh({
        servers: setupOf().server.url,
        prefix,
        presence: false,
        streams,
      });
      started.push(m);
      return m;
    },
    async deadLetters(prefix, service) {
      const jsm = await jetstreamManager(setupOf().nc);
      return listDeadLetters(jsm, prefix, { ...(service === undefined ? {} : { service }) });
    },
  };
}

/** Waits (bounded) for `check`, failing with what it waited for. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  if (!(await waitUntil(check, { timeoutMs }))) throw new Error(`timed out waiting for ${what}`);
}
