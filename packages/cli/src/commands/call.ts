import { isMeshError, type MeshError } from "@natsmesh/protocol";
import type { JwksSource } from "@natsmesh/protocol/internal";
import { type Balance, connectMesh } from "@natsmesh/sdk";
import { ExitCode, usageError } from "../errors.js";
import { type Io, note } from "../io.js";
import { jsonArgument } from "../json-argument.js";
import { ConnectMode, connectNats } from "../nats/connect.js";
import { presenceKeysSource } from "../nats/presence-keys.js";
import type { GlobalOptions } from "../program.js";

/** The flags of `natsmesh call`, as parsed (absent ones `undefined`). */
export interface CallCommandOptions {
  readonly balance: Balance | undefined;
  /** Milliseconds the call may take, retries included. */
  readonly timeout: number;
  /** Only instances of this version or semver range. */
  readonly version: string | undefined;
  /** The registries' public keys, for a call that picks from presence. */
  readonly presenceKeys: JwksSource | undefined;
}

/** `<service>.<method>`, as `natsmesh call` takes it. */
export interface CallTarget {
  readonly service: string;
  readonly method: string;
}

/**
 * Error codes of calls that did not run, or not to the end in time: the mesh had no instance,
 * or none free, or the deadline passed. Trying again later may work (exit 3); every other code
 * is the service's answer (exit 4).
 */
const UNAVAILABLE_CODES: ReadonlySet<string> = new Set([
  "UNAVAILABLE",
  "OVERLOADED",
  "DEADLINE_EXCEEDED",
]);

/** The exit code of a call that failed with `err`: 3 unavailable or timed out, 4 refused or failed. */
export function callExitCode(err: MeshError): ExitCode {
  return UNAVAILABLE_CODES.has(err.code) ? ExitCode.unavailable : ExitCode.remoteError;
}

/** What a person may do about an error, when there is something to say. */
function hint(err: MeshError, target: CallTarget): string | undefined {
  switch (err.code) {
    case "UNAVAILABLE":
      return `is an agent of ${target.service} running? \`natsmesh ls ${target.service}\` lists its instances`;
    case "DEADLINE_EXCEEDED":
      return "--timeout gives the call more time";
    case "UNAUTHENTICATED":
      return "pass a token with --token (or MESH_TOKEN, MESH_TOKEN_FILE)";
    case "FORBIDDEN":
      return `the token's scope must allow ${target.service}.${target.method}`;
    default:
      return undefined;
  }
}

/** Prints a failed call on stderr: `CODE (status): message`, or one JSON object with `--json`. */
function printError(err: MeshError, target: CallTarget, json: boolean, io: Io): void {
  if (json) {
    const { code, status, message, data } = err;
    io.stderr.write(
      `${JSON.stringify({ error: { code, status, message, ...(data === undefined ? {} : { data }) } })}\n`,
    );
    return;
  }
  note(io, `${target.service}.${target.method}: ${err.code} (${err.status}): ${err.message}`);
  if (err.data !== undefined) note(io, `data: ${JSON.stringify(err.data)}`);
  const what = hint(err, target);
  if (what !== undefined) note(io, what);
}

/**
 * `natsmesh call <service>.<method> [json]`: one request through the SDK, as JSON. The reply goes
 * to stdout (indented for people, one line with `--json`); an error to stderr, with its own exit
 * code (see {@link callExitCode}).
 */
export async function call(
  global: GlobalOptions,
  target: CallTarget,
  json: string | undefined,
  o: CallCommandOptions,
  io: Io,
): Promise<number> {
  const payload = await jsonArgument(json, io);
  // Presence (a KV watch) only when the call needs it: a strategy that picks, or a version.
  const presence = (o.balance !== undefined && o.balance !== "queue") || o.version !== undefined;
  // The keys only matter with presence: a queue call neither reads MESH_PRESENCE_KEYS nor fails on it.
  const keys = presence ? presenceKeysSource(o.presenceKeys) : undefined;
  const nc = await connectNats(global, "call", ConnectMode.once);
  try {
    const mesh = await connectMesh({
      connection: nc,
      prefix: global.prefix,
      codec: "json",
      presence: presence && keys !== undefined ? { keys } : presence,
      timeoutMs: o.timeout,
      // Without --token the SDK reads MESH_TOKEN, then MESH_TOKEN_FILE.
      ...(global.token === undefined ? {} : { token: global.token }),
    });
    try {
      // --timeout bounds it all: loading the presence view (the call picks from it), then the call.
      const deadline = Date.now() + o.timeout;
      if (presence) await mesh.ready({ timeout: o.timeout });
      const reply = await mesh.request(target.service, target.method, payload, {
        deadline,
        // A version filter needs a strategy that picks from presence: weighted, unless told.
        ...(o.balance === undefined && o.version === undefined
          ? {}
          : { balance: o.balance ?? "weighted" }),
        ...(o.version === undefined ? {} : { version: o.version }),
      });
      // A handler that returns nothing answers with an empty payload: JSON null.
      io.stdout.write(`${JSON.stringify(reply ?? null, null, global.json ? undefined : 2)}\n`);
      return ExitCode.ok;
    } catch (err) {
      // The SDK checks what it was given (a version range, say) before sending anything.
      if (err instanceof TypeError) throw usageError(err.message);
      if (!isMeshError(err)) throw err;
      printError(err, target, global.json, io);
      return callExitCode(err);
    } finally {
      await mesh.close();
    }
  } finally {
    await nc.close();
  }
}
