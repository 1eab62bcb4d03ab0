import { isMeshError } from "@natsmesh/protocol";
import { connectMesh } from "@natsmesh/sdk";
import { ExitCode, failure } from "../errors.js";
import type { Io } from "../io.js";
import { jsonArgument } from "../json-argument.js";
import { ConnectMode, connectNats } from "../nats/connect.js";
import type { GlobalOptions } from "../program.js";

/** Options of `natsmesh events emit`. */
export interface EventsEmitOptions {
  /** `Nats-Msg-Id`: emitting again with the same key within 2 minutes stores the event once. */
  id?: string;
  /** Milliseconds to wait for the stream's acknowledgement. */
  timeout: number;
}

/**
 * `natsmesh events emit <event> [json]`: emits a durable event (JSON) and prints where the
 * stream stored it.
 */
export async function eventsEmit(
  global: GlobalOptions,
  event: string,
  json: string | undefined,
  o: EventsEmitOptions,
  io: Io,
): Promise<number> {
  const payload = await jsonArgument(json, io);
  const nc = await connectNats(global, "events-emit", ConnectMode.once);
  try {
    const mesh = await connectMesh({
      connection: nc,
      prefix: global.prefix,
      presence: false,
      codec: "json",
      ...(global.token === undefined ? {} : { token: global.token }),
    });
    try {
      const ack = await mesh.emit(event, payload, {
        timeout: o.timeout,
        ...(o.id === undefined ? {} : { idempotencyKey: o.id }),
      });
      io.stdout.write(
        global.json
          ? `${JSON.stringify(ack)}\n`
          : `${event} stored as ${ack.stream} #${ack.seq} (id ${ack.id})${ack.duplicate ? ", already stored before: not stored again" : ""}\n`,
      );
      return ExitCode.ok;
    } catch (err) {
      if (isMeshError(err)) throw failure(`emit failed: ${err.code}: ${err.message}`, err);
      throw err;
    } finally {
      await mesh.close();
    }
  } finally {
    await nc.close();
  }
}
