// Open-loop load at a fixed rate, for the reliability scenarios and the soak (bench/soak.mjs).
// Types: paced-load.d.mts.
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Starts call number `n` of the mixed load on service `svc`: half weighted, half queue (in pairs),
 * and every even-numbered call idempotent.
 */
export function mixedCall(mesh, n) {
  return mesh.request(
    "svc",
    "work",
    { n },
    { balance: n % 4 < 2 ? "weighted" : "queue", idempotent: n % 2 === 0 },
  );
}

/** How often the pacer wakes up to start the calls that are due. */
const TICK_MS = 5;

/**
 * Starts `call(n)` for n = 0, 1, 2, … at `rate` per second until `durationMs` have passed or
 * `stop()` is called, with at most `maxInflight` calls at once: a call due while that many are
 * pending is skipped and counted, not queued, so an outage never turns into a burst afterwards.
 * Every settled call is reported to `onOutcome` with its start and end (epoch ms). `done`
 * resolves once the last call settled; a call still pending `stallMs` after the end fails it.
 */
export function startLoad({ rate, durationMs, maxInflight, call, onOutcome, stallMs = 30_000 }) {
  if (!(rate > 0) || !(durationMs > 0) || !(maxInflight > 0)) {
    throw new TypeError("rate, durationMs and maxInflight must be positive");
  }
  const limit = Math.ceil((rate * durationMs) / 1000);
  let stopped = false;
  let started = 0;
  let settled = 0;
  let skipped = 0;
  let inflight = 0;
  let drained;
  const idle = new Promise((resolve) => {
    drained = resolve;
  });
  const begin = performance.now();
  let elapsedMs = 0;

  const launch = (n) => {
    started++;
    inflight++;
    const start = Date.now();
    const finish = (ok, valueOrError) => {
      inflight--;
      settled++;
      onOutcome({
        n,
        start,
        end: Date.now(),
        ok,
        ...(ok ? { value: valueOrError } : { error: valueOrError }),
      });
      if (inflight === 0 && pacing === undefined) drained();
    };
    let promise;
    try {
      promise = Promise.resolve(call(n));
    } catch (err) {
      promise = Promise.reject(err);
    }
    promise.then(
      (value) => finish(true, value),
      (err) => finish(false, err),
    );
  };

  let pacing = (async () => {
    let next = 0;
    while (!stopped && next < limit) {
      const elapsed = performance.now() - begin;
      if (elapsed >= durationMs) break;
      const due = Math.min(limit, Math.floor((rate * elapsed) / 1000) + 1);
      for (; next < due; next++) {
        if (inflight < maxInflight) launch(next);
        else skipped++;
      }
      await sleep(TICK_MS);
    }
    elapsedMs = performance.now() - begin;
  })();

  const done = (async () => {
    await pacing;
    pacing = undefined;
    if (inflight > 0) {
      let timer;
      const stall = new Promise((_, reject) => {
        timer = setTimeout(
          () =>
            reject(new Error(`${inflight} calls still pending ${stallMs} ms after the load ended`)),
          stallMs,
        );
      });
      try {
        await Promise.race([idle, stall]);
      } finally {
        clearTimeout(timer);
      }
    }
    return { started, settled, skipped, elapsedMs, rate: (started / elapsedMs) * 1000 };
  })();

  return {
    done,
    stop: () => {
      stopped = true;
      return done;
    },
    get started() {
      return started;
    },
    get settled() {
      return settled;
    },
    get inflight() {
      return inflight;
    },
  };
}
