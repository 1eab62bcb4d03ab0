import type { ConnectionOptions, NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { type NatsServer, startNatsServer } from "./nats-server.js";
import type { NatsServerOptions } from "./options.js";
import { uniquePrefix } from "./unique-prefix.js";

/** What {@link setup} started for a test; `await using` ends it as {@link cleanup} does. */
export interface TestSetup extends AsyncDisposable {
  /** The test's own nats-server. */
  readonly server: NatsServer;
  /** A client connection to it, reconnecting forever (the server may be restarted). */
  readonly nc: NatsConnection;
  /** A mesh prefix unique to this setup. */
  readonly prefix: string;
}

/** Options of {@link setup}. */
export interface SetupOptions extends NatsServerOptions {
  /** Connection options on top of the server's URL. @default {} */
  connection?: Partial<ConnectionOptions>;
  /** Tag of the {@link uniquePrefix}. @default "t" */
  tag?: string;
}

/**
 * Starts a nats-server for a test suite and connects to it, as nats.js' test helpers do.
 * Pair it with {@link cleanup}.
 *
 * @example
 * ```ts
 * let t: TestSetup;
 * beforeAll(async () => { t = await setup(); });
 * afterAll(() => cleanup(t));
 * ```
 * or, inside one test, `await using t = await setup();`.
 */
export async function setup(options: SetupOptions = {}): Promise<TestSetup> {
  const { connection, tag, ...serverOptions } = options;
  const server = await startNatsServer(serverOptions);
  try {
    const nc = await connect({
      servers: server.url,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 100,
      ...connection,
    });
    const t: TestSetup = {
      server,
      nc,
      prefix: uniquePrefix(tag),
      [Symbol.asyncDispose]: () => cleanup(t),
    };
    return t;
  } catch (err) {
    await server.dispose();
    throw err;
  }
}

/** Something a test started and {@link cleanup} ends. */
export type Cleanable =
  | TestSetup
  | NatsServer
  | NatsConnection
  | AsyncDisposable
  | { stop(): Promise<unknown> }
  | { close(): Promise<unknown> }
  | undefined
  | null;

/**
 * Ends everything given, last first (so agents and clients stop before their server), even
 * when some of them fail; then throws the first failure. A {@link TestSetup} closes its
 * connection and disposes of its server. Connections are closed, not drained: a test's
 * leftovers must not hold up the next one.
 */
export async function cleanup(...items: Cleanable[]): Promise<void> {
  const failures: unknown[] = [];
  for (const item of [...items].reverse()) {
    try {
      await end(item);
    } catch (err) {
      failures.push(err);
    }
  }
  if (failures.length > 0) throw failures[0];
}

async function end(item: Cleanable): Promise<void> {
  if (item === undefined || item === null) return;
  if (isSetup(item)) {
    await cleanup(item.server, item.nc);
    return;
  }
  if (isConnection(item)) {
    if (!item.isClosed()) await item.close();
    return;
  }
  if ("dispose" in item && typeof item.dispose === "function") {
    await item.dispose();
    return;
  }
  if (Symbol.asyncDispose in item) {
    await item[Symbol.asyncDispose]();
    return;
  }
  if ("stop" in item) {
    await item.stop();
    return;
  }
  await item.close();
}

function isSetup(item: object): item is TestSetup {
  return "server" in item && "nc" in item && "prefix" in item;
}

function isConnection(item: object): item is NatsConnection {
  return "isClosed" in item && "publish" in item && "close" in item;
}
