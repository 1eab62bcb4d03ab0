import { type Msg, type NatsConnection, nuid, type Subscription } from "@nats-io/nats-core";
import { MeshError } from "@natsmesh/protocol";
import { Publisher, rawSubject, toMeshError } from "@natsmesh/protocol/internal";

/** How often pending calls are checked against their deadlines. */
const TICK_MS = 10;
/** Ticks with nothing pending before the timer stops; keeps it alive across request gaps. */
const IDLE_TICKS = 200;
/** Longest reply token: a decimal counter, which stays exact up to 2^53. */
const MAX_TOKEN_DIGITS = 15;

/** What waits for the reply of one published request. */
export interface PendingReply {
  /** Absolute time (Unix epoch ms) after which no reply is accepted. */
  readonly waitUntil: number;
  /** The reply came in time. */
  onReply(msg: Msg): void;
  /** No reply by `waitUntil`: `DEADLINE_EXCEEDED`, which the waiter may retry. */
  onNoReply(err: MeshError): void;
  /** The mux closed: the waiter fails with `err` and does not retry. */
  onClosed(err: MeshError): void;
}

function deadlineExceeded(): MeshError {
  return new MeshError("DEADLINE_EXCEEDED", "no reply before the deadline");
}

/**
 * One wildcard reply subscription for every call of a connection. A request is published with
 * the reply subject `<inbox>.<token>`, a decimal counter, and its waiter is kept in a map under
 * that number; the reply's token is read from the subject's bytes, so no subject string is
 * decoded per reply. One shared timer expires waiters past their deadline. No per-call
 * subscription, timer or inbox, which is what makes the SDK fast.
 */
export class ReplyMux {
  readonly #nc: NatsConnection;
  readonly #publisher: Publisher;
  readonly #prefix: string;
  /** `#prefix` as bytes, written into every request's frame as it is. */
  readonly #prefixBytes: Uint8Array;
  readonly #pending = new Map<number, PendingReply>();
  readonly #sub: Subscription;
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  #idleTicks = 0;
  #closed: MeshError | undefined;

  constructor(nc: NatsConnection, inboxPrefix: string) {
    this.#nc = nc;
    this.#publisher = new Publisher(nc);
    this.#prefix = `${inboxPrefix}.${nuid.next()}.`;
    this.#prefixBytes = Buffer.from(this.#prefix, "latin1");
    this.#sub = nc.subscribe(`${this.#prefix}*`, { callback: this.#onReply });
  }

  /** Calls waiting for a reply. */
  get size(): number {
    return this.#pending.size;
  }

  /** True once {@link ReplyMux.close} was called: nothing can be sent any more. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /**
   * Publishes a request and registers `waiter` for its reply; returns the request's token, for
   * {@link ReplyMux.cancel}. `subject` is text or its ASCII bytes; `headers` the whole header
   * block (ASCII text or bytes), `""` for none. Throws what publishing throws
   * (`PAYLOAD_TOO_LARGE`, connection errors), with nothing left registered.
   */
  send(
    subject: string | Uint8Array,
    headers: string | Uint8Array,
    data: Uint8Array,
    waiter: PendingReply,
  ): number {
    if (this.#closed !== undefined) throw this.#closed;
    const token = ++this.#seq;
    this.#publisher.request(subject, this.#prefixBytes, token, headers, data);
    this.#pending.set(token, waiter);
    this.#startTimer();
    return token;
  }

  /** Stops waiting for the reply of `token`; false when nothing waited for it any more. */
  cancel(token: number): boolean {
    return this.#pending.delete(token);
  }

  /**
   * Publishes a request and resolves with its reply message, for callers that want a promise
   * (events). Rejects with `DEADLINE_EXCEEDED` at `deadline`, with the signal's reason on abort,
   * with `UNAVAILABLE` if it cannot publish.
   */
  request(
    subject: string,
    data: Uint8Array,
    headers: Uint8Array,
    deadline: number,
    signal?: AbortSignal,
  ): Promise<Msg> {
    if (!Number.isFinite(deadline)) {
      return Promise.reject(new TypeError("a request needs a finite deadline"));
    }
    return new Promise<Msg>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      let token = 0;
      const onAbort = () => {
        if (this.cancel(token)) reject(signal!.reason);
      };
      const settle = () => signal?.removeEventListener("abort", onAbort);
      const waiter: PendingReply = {
        waitUntil: deadline,
        onReply: (msg) => {
          settle();
          resolve(msg);
        },
        onNoReply: (err) => {
          settle();
          reject(err);
        },
        onClosed: (err) => {
          settle();
          reject(err);
        },
      };
      try {
        token = this.send(subject, headers, data, waiter);
      } catch (err) {
        reject(toMeshError(err));
        return;
      }
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  readonly #onReply = (err: Error | null, msg: Msg): void => {
    if (err !== null) return;
    const token = this.#tokenOf(msg);
    const waiter = this.#pending.get(token);
    if (waiter === undefined) return;
    this.#pending.delete(token);
    // The shared timer ticks every few ms; a reply in that gap is still too late for the caller.
    if (Date.now() > waiter.waitUntil) waiter.onNoReply(deadlineExceeded());
    else waiter.onReply(msg);
  };

  /** The token of a reply subject `<prefix><digits>`; -1 when it is not one of ours. */
  #tokenOf(msg: Msg): number {
    const from = this.#prefix.length;
    const raw = rawSubject(msg);
    const end = raw === null ? msg.subject.length : raw.length;
    if (end <= from || end - from > MAX_TOKEN_DIGITS) return -1;
    let n = 0;
    for (let i = from; i < end; i++) {
      const d = (raw === null ? msg.subject.charCodeAt(i) : raw[i]!) - 48;
      if (d < 0 || d > 9) return -1;
      n = n * 10 + d;
    }
    return n;
  }

  #startTimer(): void {
    this.#idleTicks = 0;
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    this.#timer.unref();
  }

  #tick(): void {
    if (this.#pending.size === 0) {
      if (++this.#idleTicks >= IDLE_TICKS) this.#stopTimer();
      return;
    }
    const now = Date.now();
    for (const [token, waiter] of this.#pending) {
      if (now >= waiter.waitUntil) {
        this.#pending.delete(token);
        waiter.onNoReply(deadlineExceeded());
      }
    }
  }

  #stopTimer(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Fails every waiter with `err`, refuses new requests with it and stops listening. */
  close(err: MeshError): void {
    this.#closed = err;
    const waiters = [...this.#pending.values()];
    this.#pending.clear();
    for (const waiter of waiters) waiter.onClosed(err);
    this.#stopTimer();
    if (!this.#nc.isClosed()) this.#sub.unsubscribe();
  }
}
