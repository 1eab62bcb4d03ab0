import { once } from "node:events";
import { connect, type Socket } from "node:net";

/**
 * A bare NATS protocol client that publishes header blocks byte for byte as given: what a
 * hostile peer with its own client can send, and nats.js would refuse to build. Loopback only.
 */
export class RawPublisher {
  readonly #socket: Socket;
  #buffer = "";
  #pongs: (() => void)[] = [];
  /** `-ERR` lines the server sent. */
  readonly errors: string[] = [];

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => this.#read(chunk));
    socket.on("error", (err) => this.errors.push(String(err)));
  }

  /** Connects to the server on 127.0.0.1:`port` and waits (bounded) for its first PONG. */
  static async open(port: number, timeoutMs = 5000): Promise<RawPublisher> {
    const socket = connect({ host: "127.0.0.1", port });
    await once(socket, "connect", { signal: AbortSignal.timeout(timeoutMs) });
    const raw = new RawPublisher(socket);
    const options = { verbose: false, pedantic: false, headers: true, no_responders: true };
    socket.write(`CONNECT ${JSON.stringify({ ...options, name: "raw", lang: "raw" })}\r\n`);
    await raw.flush(timeoutMs);
    return raw;
  }

  /** `HPUB subject reply` with exactly these header and payload bytes. */
  hpub(subject: string, reply: string, header: Uint8Array, payload: Uint8Array): void {
    const total = header.length + payload.length;
    this.#socket.write(`HPUB ${subject} ${reply} ${header.length} ${total}\r\n`);
    this.#socket.write(header);
    this.#socket.write(payload);
    this.#socket.write("\r\n");
  }

  /** PING, and wait (bounded) for the PONG: everything sent before has been processed. */
  async flush(timeoutMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no PONG within ${timeoutMs} ms; ${this.errors.join("; ")}`)),
        timeoutMs,
      );
      this.#pongs.push(resolve);
      this.#socket.write("PING\r\n");
    }).finally(() => clearTimeout(timer));
  }

  close(): void {
    this.#socket.destroy();
  }

  #read(chunk: string): void {
    this.#buffer += chunk;
    for (let eol = this.#buffer.indexOf("\r\n"); eol >= 0; eol = this.#buffer.indexOf("\r\n")) {
      const line = this.#buffer.slice(0, eol);
      this.#buffer = this.#buffer.slice(eol + 2);
      if (line === "PING") this.#socket.write("PONG\r\n");
      else if (line === "PONG") this.#pongs.shift()?.();
      else if (line.startsWith("-ERR")) this.errors.push(line);
    }
  }
}
