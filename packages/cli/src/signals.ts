/** Aborted on the first SIGINT or SIGTERM; a second one ends the process at once. */
export interface Shutdown extends Disposable {
  readonly signal: AbortSignal;
}

const SIGNALS = ["SIGINT", "SIGTERM"] as const;

/**
 * Takes over SIGINT and SIGTERM for a long-running command, so it can stop cleanly (close the
 * watch, drain the connection) and exit 0. An impatient second signal exits 1 without waiting.
 * Disposing gives the signals back to Node's defaults.
 */
export function shutdownOnSignals(): Shutdown {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(1);
    controller.abort();
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  return {
    signal: controller.signal,
    [Symbol.dispose]() {
      for (const s of SIGNALS) process.off(s, onSignal);
    },
  };
}
