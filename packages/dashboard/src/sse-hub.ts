import type { ServerResponse } from "node:http";

/** Options of {@link SseHub}. */
export interface SseHubOptions {
  /** Clients served at once; more are refused with 503. */
  maxClients: number;
  /** Bytes a client may have waiting unsent before it is disconnected (it reconnects afresh). */
  maxBufferedBytes: number;
  /** A comment line this often keeps proxies from closing idle streams. */
  keepAliveMs: number;
  /** The first client came, or the last one left. */
  onActive(active: boolean): void;
}

/** One server-sent event, ready to write: `event:` and one `data:` line of JSON. */
export function sseEvent(event: string, data: unknown): string {
  // JSON.stringify escapes CR and LF, so the data is always a single line.
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Reconnection delay the browser is told to use, in milliseconds. */
const RETRY_MS = 2000;

/**
 * The open event streams. Writes never wait for a client: each event is written to every
 * stream at once, and a client whose unsent bytes pass `maxBufferedBytes` (a slow or stalled
 * reader) is disconnected, so one slow browser costs at most that much memory.
 */
export class SseHub {
  readonly #o: SseHubOptions;
  readonly #clients = new Set<ServerResponse>();
  #keepAlive: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: SseHubOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#clients.size;
  }

  /**
   * Starts an event stream on `res` with `first` (the current state) as its first event, or
   * answers 503 when the hub is full or closed. `headers` go on the response either way.
   */
  accept(res: ServerResponse, first: string, headers: Record<string, string>): boolean {
    if (this.#closed || this.#clients.size >= this.#o.maxClients) {
      res.writeHead(503, {
        ...headers,
        "Content-Type": "text/plain; charset=utf-8",
        "Retry-After": "5",
      });
      res.end("too many dashboard clients; try again later\n");
      return false;
    }
    res.writeHead(200, {
      ...headers,
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      "X-Accel-Buffering": "no",
    });
    res.socket?.setNoDelay(true);
    res.write(`retry: ${RETRY_MS}\n\n${first}`);
    this.#clients.add(res);
    res.on("close", () => this.#drop(res));
    if (this.#clients.size === 1) {
      this.#keepAlive = setInterval(() => this.#write(": keep-alive\n\n"), this.#o.keepAliveMs);
      this.#keepAlive.unref();
      this.#o.onActive(true);
    }
    return true;
  }

  /** Sends an event to every client. */
  send(event: string, data: unknown): void {
    if (this.#clients.size > 0) this.#write(sseEvent(event, data));
  }

  /** Ends every stream and refuses new ones. */
  close(): void {
    this.#closed = true;
    for (const res of [...this.#clients]) res.end();
    this.#clients.clear();
    this.#stopKeepAlive();
  }

  #write(text: string): void {
    for (const res of this.#clients) {
      if (res.writableLength > this.#o.maxBufferedBytes) {
        // Behind by more than it may be: let it go; EventSource reconnects and starts afresh.
        res.destroy();
        this.#drop(res);
      } else {
        res.write(text);
      }
    }
  }

  #drop(res: ServerResponse): void {
    if (!this.#clients.delete(res)) return;
    if (this.#clients.size === 0) {
      this.#stopKeepAlive();
      if (!this.#closed) this.#o.onActive(false);
    }
  }

  #stopKeepAlive(): void {
    clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
  }
}
