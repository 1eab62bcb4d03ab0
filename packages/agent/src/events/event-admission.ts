import { type Codec, MeshError } from "@natsmesh/protocol";
import {
  type DecodeLimits,
  decodeScanned,
  scanPayload,
  toMeshError,
} from "@natsmesh/protocol/internal";
import type { AgentAuth } from "../auth.js";
import type { CallerClaims } from "../call.js";
import type { EventInput } from "./event-input.js";

/** An event that may reach its handler. */
export interface AdmittedEvent {
  payload: unknown;
  caller: CallerClaims | undefined;
}

/**
 * Decodes an event's payload as requests are decoded: its structure is scanned against the
 * agent's limits (values, depth) before anything is built. The error to dead-letter or drop
 * with otherwise; never throws.
 */
export function decodeEvent(codec: Codec, data: Uint8Array, limits: DecodeLimits): unknown {
  const scanned = scanPayload(codec, data, limits);
  if (scanned instanceof MeshError) return scanned;
  try {
    return decodeScanned(codec, data);
  } catch (err) {
    return toMeshError(err);
  }
}

/**
 * The checks between a read event and its handler, in the order that costs least for hostile
 * input: the token (valid at `atMs`, scope `emit:<event>`), then the payload
 * ({@link decodeEvent}). Returns the error to dead-letter or drop with; never throws.
 */
export async function admitEvent(
  input: EventInput,
  data: Uint8Array,
  auth: AgentAuth | undefined,
  atMs: number,
  limits: DecodeLimits,
): Promise<AdmittedEvent | MeshError> {
  let caller: CallerClaims | undefined;
  if (auth !== undefined) {
    const checked = await auth.checkEmit(input.authorization, input.name, atMs);
    if (checked instanceof MeshError) return checked;
    caller = checked.claims;
  }
  const payload = decodeEvent(input.codec, data, limits);
  return payload instanceof MeshError ? payload : { payload, caller };
}
