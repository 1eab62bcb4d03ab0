import { jetstreamManager } from "@nats-io/jetstream";
import { type Agent, startAgent } from "@natsmesh/agent";
import { eventStream } from "@natsmesh/protocol";
import { listDeadLetters, type StoredDeadLetter } from "@natsmesh/protocol/internal";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup, until } from "@natsmesh/testing";
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
  /**
   * Waits until the consumer groups of `service` hold nothing undelivered or unacknowledged, so
   * no delivery can follow, and returns how many deliveries they made, redeliveries included.
   */
  settled(prefix: string, service: string): Promise<number>;
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
    async settled(prefix, service) {
      const jsm = await jetstreamManager(setupOf().nc);
      let deliveries = 0;
      const state: string[] = [];
      await until(
        () => `the groups of ${service} to settle (${state.join("; ")})`,
        async () => {
          state.length = 0;
          deliveries = 0;
          let idle = true;
          for await (const c of jsm.consumers.list(eventStream(prefix))) {
            if (!c.name.startsWith(`${service}__`)) continue;
            state.push(`${c.name}: ${c.num_pending} pending, ${c.num_ack_pending} unacked`);
            deliveries += c.delivered.consumer_seq;
            idle &&= c.num_pending === 0 && c.num_ack_pending === 0;
          }
          return state.length > 0 && idle;
        },
      );
      return deliveries;
    },
  };
}
