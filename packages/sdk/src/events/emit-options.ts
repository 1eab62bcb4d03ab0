import type { CodecName } from "@natsmesh/protocol";

/** Options of `mesh.emit()`. */
export interface EmitOptions {
  /**
   * The event id, sent as `Nats-Msg-Id`: the stream stores an id once within its duplicate
   * window (2 minutes), so emitting again with the same key after a failure cannot store the
   * event twice. 1–128 printable ASCII characters.
   * @default a new NUID
   */
  idempotencyKey?: string;
  /** Time the emit may take until the stream acknowledges it. @default the mesh's `timeoutMs` */
  timeout?: number;
  /** Aborting rejects the emit at once with the signal's reason (it may still be stored). */
  signal?: AbortSignal;
  /** Extra headers; a `traceparent` here makes the event part of that trace. */
  headers?: Record<string, string>;
  /** @default the mesh's codec */
  codec?: CodecName;
  /** A token for this event only, instead of the mesh's. */
  token?: string;
}

/** Options of `mesh.broadcast()`. */
export type BroadcastOptions = Pick<EmitOptions, "headers" | "codec" | "token">;

/** What `mesh.emit()` resolves with once the stream stored the event. */
export interface EmitResult {
  /** The event id (`Nats-Msg-Id`). */
  id: string;
  /** The stream that stored it, `<P>_events`. */
  stream: string;
  /** Its sequence number in the stream. */
  seq: number;
  /** True when the id had been stored already (a retried emit): `seq` is the first one's. */
  duplicate: boolean;
}
