import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { failure } from "../errors.js";
import { ConnectMode, connectNats } from "../nats/connect.js";
import { requireJetStream } from "../nats/require-jetstream.js";
import type { GlobalOptions } from "../program.js";
import {
  NATS_SERVER,
  NatsServerMissing,
  type NatsServerProcess,
  startNatsServerProcess,
} from "./nats-server-process.js";

/** Where the mesh of `natsmesh up` runs. */
export interface MeshNats {
  /** The servers, comma-separated, as NATS_URL takes them. */
  readonly url: string;
  /**
   * `given`: NATS_URL or --server; `local`: a JetStream server that answered at 127.0.0.1;
   * `started`: a nats-server this command started (see {@link MeshNats.server}).
   */
  readonly source: "given" | "local" | "started";
  /** The nats-server this command started, which it stops on the way out. */
  readonly server?: NatsServerProcess;
  /** Its JetStream store. */
  readonly store?: string;
}

/** How long the look at 127.0.0.1 may take before it counts as "nothing there". */
const PROBE_TIMEOUT_MS = 1_500;

/** Exactly what to do when there is no NATS server to run the mesh on. */
export function installHint(port: number): string {
  return [
    `no NATS server answers at 127.0.0.1:${port}, and ${NATS_SERVER} is not on the PATH to start one.`,
    "Do one of these, then run natsmesh up again:",
    `  - install ${NATS_SERVER} (2.9 or later):`,
    `      Debian/Ubuntu:  sudo apt-get install ${NATS_SERVER}`,
    `      macOS:          brew install ${NATS_SERVER}`,
    "      with Go:        go install github.com/nats-io/nats-server/v2@latest",
    "      or a release:   https://github.com/nats-io/nats-server/releases",
    `  - or start one yourself with JetStream on:  ${NATS_SERVER} -js`,
    "  - or run the whole mesh with Docker Compose:  docker compose -f docker/compose.yml up",
    "  - or use a server you have:  NATS_URL=nats://host:4222 natsmesh up",
  ].join("\n");
}

/** What answers at `url`: nothing, a server without JetStream (or refusing us), or a usable one. */
async function probe(url: string): Promise<"none" | "unusable" | "jetstream"> {
  let nc: Awaited<ReturnType<typeof connect>>;
  try {
    nc = await connect({ servers: url, reconnect: false, timeout: PROBE_TIMEOUT_MS });
  } catch (err) {
    // A server that refuses our (lack of) credentials is there, but not for us.
    return err instanceof Error && err.name === "AuthorizationError" ? "unusable" : "none";
  }
  try {
    // Asks the server for the account's JetStream info: fails when JetStream is off.
    await jetstreamManager(nc, { timeout: PROBE_TIMEOUT_MS });
    return "jetstream";
  } catch {
    return "unusable";
  } finally {
    await nc.close();
  }
}

/**
 * The NATS server the mesh runs on: the one given (NATS_URL or --server, which must have
 * JetStream on); else a JetStream server at 127.0.0.1:`port`; else a `nats-server -js` started
 * from the PATH, its store under `dir` (at `port` when nothing listens there, else at any free
 * port); else a failure that says how to get one.
 */
export async function findNats(o: {
  global: GlobalOptions;
  given: boolean;
  port: number;
  dir: string;
  onNote(message: string): void;
}): Promise<MeshNats> {
  if (o.given) {
    const nc = await connectNats(o.global, "up", ConnectMode.once);
    try {
      await requireJetStream(nc);
    } finally {
      await nc.close();
    }
    return { url: o.global.servers.join(","), source: "given" };
  }
  const local = `nats://127.0.0.1:${o.port}`;
  const found = await probe(local);
  if (found === "jetstream") return { url: local, source: "local" };
  if (found === "unusable") {
    o.onNote(
      `the NATS server at 127.0.0.1:${o.port} has no JetStream (or wants credentials); ` +
        `starting ${NATS_SERVER} on another port`,
    );
  }
  const store = join(o.dir, "nats");
  try {
    const server = await startNatsServerProcess({
      port: found === "none" ? o.port : 0,
      storeDir: store,
    });
    return { url: server.url, source: "started", server, store };
  } catch (err) {
    if (err instanceof NatsServerMissing) throw failure(installHint(o.port), err);
    throw err;
  }
}
