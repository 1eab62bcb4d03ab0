import { MeshError } from "@natsmesh/protocol";
import { assertName, checkInt } from "@natsmesh/protocol/internal";

/** Options of `mesh.ready()`. */
export interface ReadyOptions {
  /**
   * Also wait until the presence view holds at least one `ready` instance of this service (one
   * that a call has not found dead), however long after the snapshot it appears.
   * @default none: the snapshot alone
   */
  service?: string;
  /**
   * Milliseconds to wait at most; then the promise rejects with `DEADLINE_EXCEEDED`, or with
   * `UNAVAILABLE` when the presence bucket could not be read meanwhile.
   * @default the mesh's `timeoutMs`
   */
  timeout?: number;
  /** Aborting rejects at once with the signal's reason. */
  signal?: AbortSignal;
}

/** What one wait is told: {@link ReadyOptions} checked and defaulted. */
export interface ReadyWait {
  readonly service: string | undefined;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
}

/** The key of the waits for the snapshot alone (service names are never empty). */
const SNAPSHOT = "";

/**
 * The waits of `mesh.ready()`. Every wait for the same thing shares one entry (a set of
 * callbacks, not a promise each caller chains onto), and a wait that ends by its timeout, its
 * signal or `close()` takes itself out at once, timer and signal listener included: callers
 * that give up leave nothing behind, however often they try.
 */
export class ReadyWaits {
  readonly #hasReady: (service: string) => boolean;
  /** Callbacks of the pending waits, by service ({@link SNAPSHOT}: the snapshot alone). */
  readonly #waits = new Map<string, Set<() => void>>();
  #settled = false;
  #closed = false;
  /** Why the watch failed last, while it has not settled; cleared once it has. */
  #failure: unknown;

  /** `hasReady(service)`: whether the view holds a `ready` instance of it now. */
  constructor(hasReady: (service: string) => boolean) {
    this.#hasReady = hasReady;
  }

  /** True once the first snapshot is in, or the bucket was found missing. */
  get settled(): boolean {
    return this.#settled;
  }

  /** How many waits are pending: 0 once every caller has its answer. */
  get pending(): number {
    let n = 0;
    for (const set of this.#waits.values()) n += set.size;
    return n;
  }

  /** The snapshot is in (or there is no bucket): waits for it end, waits for services check. */
  settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#failure = undefined;
    this.#release(SNAPSHOT);
    for (const service of [...this.#waits.keys()]) this.changed(service);
  }

  /** Reading the bucket failed; a timeout then says why (`UNAVAILABLE`). */
  failed(error: unknown): void {
    if (!this.#settled) this.#failure = error;
  }

  /** An instance of `service` came up or changed: its waits end if one is ready now. */
  changed(service: string): void {
    if (this.#settled && this.#waits.has(service) && this.#hasReady(service)) {
      this.#release(service);
    }
  }

  /** Rejects every pending wait, and every later one, with `UNAVAILABLE`. */
  close(): void {
    this.#closed = true;
    for (const set of this.#waits.values()) for (const end of [...set]) end();
    this.#waits.clear();
  }

  /** Resolves once what `o` asks for holds; see {@link ReadyOptions}. */
  wait(o: ReadyWait): Promise<void> {
    if (this.#closed) return Promise.reject(closedError());
    if (o.signal?.aborted) return Promise.reject(o.signal.reason);
    const key = o.service ?? SNAPSHOT;
    if (this.#settled && (o.service === undefined || this.#hasReady(o.service))) {
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      let set = this.#waits.get(key);
      if (set === undefined) {
        set = new Set();
        this.#waits.set(key, set);
      }
      const waits = set;
      const end = (error?: unknown) => {
        clearTimeout(timer);
        o.signal?.removeEventListener("abort", onAbort);
        waits.delete(done);
        if (waits.size === 0 && this.#waits.get(key) === waits) this.#waits.delete(key);
        if (error === undefined) resolve();
        else reject(error);
      };
      // Called with no argument by settle()/changed(), and by close(), which has closed first.
      const done = () => end(this.#closed ? closedError() : undefined);
      const onAbort = () => end(o.signal?.reason);
      const timer = setTimeout(() => end(this.#timeoutError(o)), o.timeoutMs);
      o.signal?.addEventListener("abort", onAbort, { once: true });
      waits.add(done);
    });
  }

  #release(key: string): void {
    const set = this.#waits.get(key);
    if (set === undefined) return;
    this.#waits.delete(key);
    for (const done of [...set]) done();
  }

  #timeoutError(o: ReadyWait): MeshError {
    if (!this.#settled && this.#failure !== undefined) {
      const why = this.#failure instanceof Error ? this.#failure.message : String(this.#failure);
      return new MeshError(
        "UNAVAILABLE",
        `the presence bucket could not be read within ${o.timeoutMs} ms: ${why}`,
        { cause: this.#failure },
      );
    }
    const what = this.#settled
      ? `no ready instance of ${o.service} appeared`
      : "the presence snapshot did not come";
    return new MeshError("DEADLINE_EXCEEDED", `${what} within ${o.timeoutMs} ms`);
  }
}

function closedError(): MeshError {
  return new MeshError("UNAVAILABLE", "the mesh client is closed");
}

/**
 * {@link ReadyOptions} → a {@link ReadyWait}, `timeout` defaulting to `defaultTimeoutMs`.
 * Throws `TypeError` on an invalid option.
 */
export function resolveReadyOptions(options: unknown, defaultTimeoutMs: number): ReadyWait {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`ready() options must be an object, got ${String(options)}`);
  }
  const { service, timeout, signal } = options as ReadyOptions;
  if (service !== undefined) assertName(service, "service");
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError("signal must be an AbortSignal");
  }
  return {
    service,
    timeoutMs:
      timeout === undefined ? defaultTimeoutMs : checkInt(timeout, "timeout", 1, 3_600_000),
    signal,
  };
}
