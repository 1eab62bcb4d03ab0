import { JetStreamApiCodes } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { presenceBucket } from "@natsmesh/protocol";
import { openJetStreamManager } from "./jetstream-manager.js";

/** The presence bucket, opened, with the size of the part a command looks at. */
export interface OpenPresence {
  readonly kv: KV;
  readonly bucket: string;
  /**
   * Keys under the filter that hold a message (a value or a delete marker); with history 1
   * this is how many entries the snapshot of a watch of that filter delivers.
   */
  readonly keys: number;
}

/** The KV key filter of one service's instances, or of all. */
export function keyFilter(service: string | undefined): string {
  return service === undefined ? ">" : `${service}.*`;
}

function isStreamNotFound(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as Error & { code?: unknown }).code;
  return err.name === "StreamNotFoundError" || code === JetStreamApiCodes.StreamNotFound;
}

/**
 * Opens `<P>_presence` without creating it: only a registry creates it. Resolves `undefined`
 * when the bucket does not exist. `Kvm.open()` alone would not tell (it binds without asking
 * the server), so this asks for the stream's info, filtered to the keys that will be read.
 */
export async function openPresence(
  nc: NatsConnection,
  prefix: string,
  service?: string,
): Promise<OpenPresence | undefined> {
  const bucket = presenceBucket(prefix);
  const jsm = await openJetStreamManager(nc);
  try {
    const info = await jsm.streams.info(`KV_${bucket}`, {
      subjects_filter: `$KV.${bucket}.${keyFilter(service)}`,
    });
    const kv = await new Kvm(nc).open(bucket);
    return { kv, bucket, keys: Object.keys(info.state.subjects ?? {}).length };
  } catch (err) {
    if (isStreamNotFound(err)) return undefined;
    throw err;
  }
}
