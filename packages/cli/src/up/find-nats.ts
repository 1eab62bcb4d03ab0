import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { type ConnectionIdentity, identityOptions } from "@natsmesh/protocol/internal";
import { errorCode, failure } from "../errors.js";
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

/** How long the look at 127.0.0.1 may take before it counts as "not a NATS server". */
const PROBE_TIMEOUT_MS = 1_500;

/** What answers at 127.0.0.1:<--nats-port>, as far as the identity `up` was given can tell. */
export const Found = {
  /** Nothing listens there (connection refused): `up` may start its server on that port. */
  none: "none",
  /** A NATS server with JetStream, usable with the identity given. */
  jetstream: "jetstream",
  /** A NATS server without JetStream, or whose JetStream API this NATS user may not use. */
  noJetStream: "no-jetstream",
  /** A NATS server that wants credentials (none were given) or refused the ones given. */
  auth: "auth",
  /** Something that did not answer as a NATS server in time. */
  other: "other",
} as const;
export type Found = (typeof Found)[keyof typeof Found];

/** What was found there, in words, when it is not usable. */
function foundText(found: Found, port: number, credentials: boolean): string {
  const at = `127.0.0.1:${port}`;
  switch (found) {
    case Found.auth:
      return credentials
        ? `the NATS server at ${at} refused the NATS credentials given`
        : `the NATS server at ${at} wants credentials, and none were given ` +
            "(to run the mesh on it: NATS_USER and NATS_PASSWORD, NATS_TOKEN, NATS_CREDS or " +
            "NATS_NKEY, or their flags)";
    case Found.noJetStream:
      return credentials
        ? `the NATS server at ${at} has no JetStream for this NATS user ` +
            "(JetStream off, or the user may not use its API)"
        : `the NATS server at ${at} has no JetStream (run it with -js to use it)`;
    case Found.other:
      return `something at ${at} did not answer as a NATS server within ${PROBE_TIMEOUT_MS / 1000} s`;
    default:
      return `no NATS server answers at ${at}`;
  }
}

/** Exactly what to do when there is no NATS server to run the mesh on. */
export function installHint(port: number, found: Found = Found.none, credentials = false): string {
  const start = found === Found.none ? "start one" : "start another";
  return [
    `${foundText(found, port, credentials)}, and ${NATS_SERVER} is not on the PATH to ${start}.`,
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

/**
 * What answers at `url`, connecting as `identity` (the NATS credentials and inbox prefix `up`
 * was given, if any): bounded by {@link PROBE_TIMEOUT_MS} per step, so nothing there can hang it.
 */
async function probeNats(url: string, identity: ConnectionIdentity): Promise<Found> {
  let nc: Awaited<ReturnType<typeof connect>>;
  try {
    nc = await connect({
      servers: url,
      reconnect: false,
      timeout: PROBE_TIMEOUT_MS,
      ...identityOptions(identity),
    });
  } catch (err) {
    if (err instanceof Error && err.name === "AuthorizationError") return Found.auth;
    // Refused: nothing listens. Anything else (no answer in time, a reset, junk): something does.
    return errorCode(err) === "ECONNREFUSED" ? Found.none : Found.other;
  }
  try {
    // Asks the server for the account's JetStream info: fails when JetStream is off for it.
    await jetstreamManager(nc, { timeout: PROBE_TIMEOUT_MS });
    return Found.jetstream;
  } catch {
    return Found.noJetStream;
  } finally {
    await nc.close();
  }
}

/**
 * The NATS server the mesh runs on: the one given (NATS_URL or --server, which must have
 * JetStream on); else a JetStream server at 127.0.0.1:`port`, reached with the NATS credentials
 * given, if any (a server there that refuses them is a failure); else a `nats-server -js`
 * started from the PATH, its store under `dir` (at `port` when nothing listens there, else at
 * any free port, after a note saying what answered there); else a failure that says how to get
 * one.
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
  const found = await probeNats(local, o.global.identity);
  if (found === Found.jetstream) return { url: local, source: "local" };
  const credentials = o.global.identity.credentials !== undefined;
  if (found === Found.auth && credentials) {
    // Credentials were given for that server: a mesh on a server of our own is not what was meant.
    throw failure(
      `${foundText(found, o.port, credentials)} (--user/--password, --nats-token, --creds or ` +
        "--nkey, or their NATS_* variables). Fix them; or unset them, or pick another " +
        "--nats-port, to let natsmesh up start a NATS server of its own.",
    );
  }
  if (found !== Found.none) {
    o.onNote(`${foundText(found, o.port, credentials)}; starting ${NATS_SERVER} on a free port`);
  }
  const store = join(o.dir, "nats");
  try {
    const server = await startNatsServerProcess({
      port: found === Found.none ? o.port : 0,
      storeDir: store,
    });
    return { url: server.url, source: "started", server, store };
  } catch (err) {
    if (err instanceof NatsServerMissing) {
      throw failure(installHint(o.port, found, credentials), err);
    }
    throw err;
  }
}
