import type { Mesh } from "@natsmesh/sdk";

/** One settled call. */
export type Outcome =
  | { n: number; start: number; end: number; ok: true; value: unknown }
  | { n: number; start: number; end: number; ok: false; error: unknown };

export interface LoadOptions {
  /** Calls started per second. */
  rate: number;
  /** How long calls are started. */
  durationMs: number;
  /** Most calls pending at once; a call due beyond it is skipped and counted. */
  maxInflight: number;
  /** Starts call number `n`. */
  call(n: number): Promise<unknown>;
  /** Told of every settled call. */
  onOutcome(outcome: Outcome): void;
  /** Bound on waiting for the last calls after the end. @default 30000 */
  stallMs?: number;
}

export interface LoadSummary {
  started: number;
  settled: number;
  skipped: number;
  /** How long calls were started, ms. */
  elapsedMs: number;
  /** Calls started per second over `elapsedMs`. */
  rate: number;
}

export interface Load {
  /** Resolves once the last call settled. */
  readonly done: Promise<LoadSummary>;
  /** Starts no more calls; resolves as `done`. */
  stop(): Promise<LoadSummary>;
  readonly started: number;
  readonly settled: number;
  readonly inflight: number;
}

export declare function startLoad(options: LoadOptions): Load;

/** Call number `n` of the mixed load on `svc`: half weighted, half queue; even ones idempotent. */
export declare function mixedCall(mesh: Mesh, n: number): Promise<unknown>;
