import { type EndpointStatsData, OTHER_ERRORS, StatsLimits } from "@natsmesh/protocol";
import { isValidErrorCode, LatencyHistogram } from "@natsmesh/protocol/internal";

/**
 * Counters of one endpoint (method), reported by NATS micro `$SRV.STATS`: the one record of an
 * endpoint's calls, errors by code and handling times, which every report reads.
 */
export class EndpointStats {
  requests = 0;
  errors = 0;
  /** Total processing time in nanoseconds, measured from arrival to reply. */
  processingNs = 0;
  lastError = "";
  /** Processing times by bucket. */
  readonly latency = new LatencyHistogram();
  /** Failed calls by code; touched only on errors, at most {@link StatsLimits.maxErrorCodes} keys. */
  readonly errorsByCode = new Map<string, number>();

  /** Counts one answered call that arrived at `startedAt`; returns its handling time, ms. */
  record(startedAt: number, error: { code: string; message: string } | undefined): number {
    const ms = performance.now() - startedAt;
    this.requests++;
    this.processingNs += Math.round(ms * 1e6);
    this.latency.recordMs(ms);
    if (error !== undefined) this.#error(error);
    return ms;
  }

  #error(error: { code: string; message: string }): void {
    this.errors++;
    this.lastError = `${error.code}: ${error.message}`;
    const byCode = this.errorsByCode;
    // Counted under the code the caller got (an invalid one goes out as INTERNAL).
    let code = isValidErrorCode(error.code) ? error.code : "INTERNAL";
    // Codes are the handlers' own: a handler that makes one up per call must not grow the map.
    if (!byCode.has(code) && byCode.size >= StatsLimits.maxErrorCodes) code = OTHER_ERRORS;
    byCode.set(code, (byCode.get(code) ?? 0) + 1);
  }

  /** The endpoint's `data` in `$SRV.STATS`. */
  data(): EndpointStatsData {
    return { latency_us: this.latency.toWire(), errors: Object.fromEntries(this.errorsByCode) };
  }

  reset(): void {
    this.requests = 0;
    this.errors = 0;
    this.processingNs = 0;
    this.lastError = "";
    this.latency.reset();
    this.errorsByCode.clear();
  }
}
