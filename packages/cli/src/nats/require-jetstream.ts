import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { type CliError, failure } from "../errors.js";

/**
 * A server without JetStream as the failure (exit 1) that says so in one line, instead of a
 * timeout further on; `undefined` for any other error.
 */
export function jetStreamOff(err: unknown): CliError | undefined {
  if (err instanceof Error && err.name === "JetStreamNotEnabled") {
    return failure("JetStream is not enabled on this NATS server (run nats-server with -js).", err);
  }
  return undefined;
}

/** The JetStream manager of `nc`, for commands that need JetStream on ({@link jetStreamOff}). */
export async function requireJetStream(nc: NatsConnection): Promise<JetStreamManager> {
  try {
    return await jetstreamManager(nc);
  } catch (err) {
    throw jetStreamOff(err) ?? err;
  }
}
