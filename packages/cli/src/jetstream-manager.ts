import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { failure } from "./errors.js";

/**
 * The JetStream manager of `nc`. A server without JetStream is a failure (exit 1) that says
 * so in one line, instead of a timeout further on.
 */
export async function openJetStreamManager(nc: NatsConnection): Promise<JetStreamManager> {
  try {
    return await jetstreamManager(nc);
  } catch (err) {
    if (err instanceof Error && err.name === "JetStreamNotEnabled") {
      throw failure(
        "JetStream is not enabled on this NATS server (run nats-server with -js).",
        err,
      );
    }
    throw err;
  }
}
