import { MeshError } from "@natsmesh/protocol";
import { toMeshError } from "@natsmesh/protocol/internal";
import type { AgentAuth } from "../auth.js";
import type { CallerClaims } from "../call.js";
import type { EventInput } from "./event-input.js";

/** An event that may reach its handler. */
export interface AdmittedEvent {
  payload: unknown;
  caller: CallerClaims | undefined;
}

/**
 * The checks between a read event and its handler, in the order that costs least for hostile
 * input: the token (valid at `atMs`, scope `emit:<event>`), then decoding the payload with the
 * shared codec (and its limits). Returns the error to dead-letter or drop with; never throws.
 */
export async function admitEvent(
  input: EventInput,
  data: Uint8Array,
  auth: AgentAuth | undefined,
  atMs: number,
): Promise<AdmittedEvent | MeshError> {
  let caller: CallerClaims | undefined;
  if (auth !== undefined) {
    const checked = await auth.checkEmit(input.authorization, input.name, atMs);
    if (checked instanceof MeshError) return checked;
    caller = checked.claims;
  }
  try {
    return { payload: input.codec.decode(data), caller };
  } catch (err) {
    return toMeshError(err);
  }
}
