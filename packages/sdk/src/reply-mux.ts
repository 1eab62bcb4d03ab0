import {
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  nuid,
  type Subscription,
} from "@nats-io/nats-core";
import { MeshError } from "@natsmesh/protocol";
import { toMeshError } from "@natsmesh/protocol/internal";

/** How often pending calls are checked against their deadlines. */
const TICK_MS = 10;
/** Ticks with nothing pending before the timer stops; keeps it alive across request gaps. */
const IDLE_TICKS = 200;

interface Pending {
  resolve: (msg: Msg) => void;
  reject: (err: unknown) => void;
  deadline: number;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * One wildcard reply subscription for every call of a connection. A call publishes with a reply
 * subject `<inbox>.<token>` and waits in a map; one shared timer expires calls past their
 * deadline. No per-call subscription, timer or inbox, which is what makes the SDK fast.
 */
export class ReplyMux {
  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #pending = new Map<string, Pending>();
  readonly #sub: Subscription;
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  #idleTicks = 0;

  constructor(nc: NatsConnection, inboxPrefix: string) {
    this.#nc = nc;
    this.#prefix = `${inboxPrefix}.${nuid.next()}.`;
    this.#sub = nc.subscribe(`${this.#prefix}*`, { callback: this.#onReply });
  }

  /** Calls waiting for a reply. */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * Publishes a request and resolves with its reply message. Rejects with `DEADLINE_EXCEEDED`
   * at `deadline`, with the signal's reason on abort, with `UNAVAILABLE` if it cannot publish.
   */
  request(
    subject: string,
    data: Uint8Array,
    headers: MsgHdrs,
    deadline: number,
    signal?: AbortSignal,
  ): Promise<Msg> {
    if (!Number.isFinite(deadline)) {
      return Promise.reject(new TypeError("a request needs a finite deadline"));
    }
    const token = (++this.#seq).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      const pending: Pending = { resolve, reject, deadline, signal: undefined, onAbort: undefined };
      if (signal !== undefined) {
        if (signal.aborted) {
          reject(signal.reason);
          return;
        }
        pending.signal = signal;
        pending.onAbort = () => {
          if (this.#pending.delete(token)) reject(signal.reason);
        };
        signal.addEventListener("abort", pending.onAbort, { once: true });
      }
      this.#pending.set(token, pending);
      this.#startTimer();
      try {
        this.#nc.publish(subject, data, { reply: this.#prefix + token, headers });
      } catch (err) {
        this.#take(token);
        reject(toMeshError(err));
      }
    });
  }

  readonly #onReply = (err: Error | null, msg: Msg): void => {
    if (err !== null) return;
    const pending = this.#take(msg.subject.slice(this.#prefix.length));
    if (pending === undefined) return;
    // The shared timer ticks every few ms; a reply in that gap is still too late for the caller.
    if (Date.now() > pending.deadline)
      pending.reject(new MeshError("DEADLINE_EXCEEDED", "no reply before the deadline"));
    else pending.resolve(msg);
  };

  #take(token: string): Pending | undefined {
    const pending = this.#pending.get(token);
    if (pending === undefined) return undefined;
    this.#pending.delete(token);
    if (pending.onAbort !== undefined)
      pending.signal!.removeEventListener("abort", pending.onAbort);
    return pending;
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
    for (const [token, pending] of this.#pending) {
      if (now >= pending.deadline) {
        this.#take(token);
        pending.reject(new MeshError("DEADLINE_EXCEEDED", "no reply before the deadline"));
      }
    }
  }

  #stopTimer(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Rejects every pending call with `err` and stops listening. */
  close(err: MeshError): void {
    for (const token of [...this.#pending.keys()]) this.#take(token)?.reject(err);
    this.#stopTimer();
    if (!this.#nc.isClosed()) this.#sub.unsubscribe();
  }
}
