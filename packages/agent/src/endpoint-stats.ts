/** Counters of one endpoint (method), reported by NATS micro `$SRV.STATS`. */
export class EndpointStats {
  requests = 0;
  errors = 0;
  /** Total processing time in nanoseconds, measured from arrival to reply. */
  processingNs = 0;
  lastError = "";

  record(startedAt: number, error: { code: string; message: string } | undefined): void {
    this.requests++;
    this.processingNs += Math.round((performance.now() - startedAt) * 1e6);
    if (error !== undefined) {
      this.errors++;
      this.lastError = `${error.code}: ${error.message}`;
    }
  }

  reset(): void {
    this.requests = 0;
    this.errors = 0;
    this.processingNs = 0;
    this.lastError = "";
  }
}
