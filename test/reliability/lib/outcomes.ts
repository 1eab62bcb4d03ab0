import { isMeshError } from "@natsmesh/protocol";
import type { Outcome } from "./paced-load.mjs";

/** A call as a scenario judges it: when it ran, how it ended, and with which error code. */
export interface CallRecord {
  n: number;
  start: number;
  end: number;
  ok: boolean;
  /** The MeshError code, or `NOT_A_MESH_ERROR` for anything else a caller should never see. */
  code: string | undefined;
  /** The value of a successful call. */
  value: unknown;
}

/** Keeps every outcome of a load as a {@link CallRecord}, by call number. */
export class CallLog {
  readonly calls: CallRecord[] = [];

  readonly record = (o: Outcome): void => {
    this.calls.push({
      n: o.n,
      start: o.start,
      end: o.end,
      ok: o.ok,
      code: o.ok ? undefined : isMeshError(o.error) ? o.error.code : "NOT_A_MESH_ERROR",
      value: o.ok ? o.value : undefined,
    });
  };

  get failed(): CallRecord[] {
    return this.calls.filter((c) => !c.ok);
  }

  /** How many calls failed with each code. */
  codes(calls: readonly CallRecord[] = this.failed): Record<string, number> {
    const out: Record<string, number> = {};
    for (const c of calls) out[c.code ?? "OK"] = (out[c.code ?? "OK"] ?? 0) + 1;
    return out;
  }

  /** The longest a call took, ms. */
  longest(calls: readonly CallRecord[] = this.calls): number {
    return calls.reduce((most, c) => Math.max(most, c.end - c.start), 0);
  }
}
