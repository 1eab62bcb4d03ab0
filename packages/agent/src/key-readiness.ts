import { MeshError } from "@natsmesh/protocol";
import type { Logger } from "pino";

/** Least time between two log lines saying the agent is still unready. */
const REMIND_MS = 10_000;

const UNREADY_HINT =
  'the instance is "unready" in presence and answers every call UNAVAILABLE until a key set is ' +
  "published (natsmesh keys publish)";

/**
 * Whether an agent with auth can verify tokens: it holds at least one public key, or a shared
 * secret. An agent without keys must not look healthy while refusing every caller, so the state
 * is logged at `error` when it starts or becomes unready, again at most every 10 s while it
 * stays so, and reported to a listener (the agent's record status).
 */
export class KeyReadiness {
  /** What an unready agent answers: the token may be fine, this instance cannot tell. */
  static readonly UNREADY: MeshError = Object.freeze(
    new MeshError("UNAVAILABLE", "this instance has no key set to verify tokens with yet"),
  ) as MeshError;

  /** Called whenever {@link KeyReadiness.ready} changes. */
  listener: () => void = () => undefined;
  readonly #secret: boolean;
  readonly #log: Logger;
  #keys = 0;
  #started = false;
  #loggedAt = 0;

  constructor(secret: boolean, log: Logger) {
    this.#secret = secret;
    this.#log = log;
  }

  get ready(): boolean {
    return this.#secret || this.#keys > 0;
  }

  /** A new key set is in force (an empty one when the `"kv"` key is missing or deleted). */
  loaded(kids: readonly (string | undefined)[]): void {
    const was = this.ready;
    this.#keys = kids.length;
    if (kids.length > 0) this.#log.info({ kids }, "key set loaded");
    if (!this.#started || was === this.ready) return;
    if (!this.ready) {
      this.#loggedAt = Date.now();
      this.#log.error(`the key set is now empty; ${UNREADY_HINT}`);
    }
    this.listener();
  }

  /** A key set could not be read or was refused. */
  failed(err: unknown): void {
    if (this.ready) {
      this.#log.error({ err }, "key set update refused; keeping the previous keys");
    } else if (this.#due()) {
      this.#log.error({ err }, `the key set cannot be loaded yet; ${UNREADY_HINT}`);
    }
  }

  /** The agent has started with whatever key set loaded so far. */
  started(): void {
    this.#started = true;
    if (this.ready) return;
    this.#loggedAt = Date.now();
    this.#log.error(`started without a key set; ${UNREADY_HINT}`);
  }

  /** Says again that the agent is unready, at most every 10 s. */
  remind(): void {
    if (!this.ready && this.#due()) this.#log.error(`still no key set; ${UNREADY_HINT}`);
  }

  #due(): boolean {
    const now = Date.now();
    if (now - this.#loggedAt < REMIND_MS) return false;
    this.#loggedAt = now;
    return true;
  }
}
