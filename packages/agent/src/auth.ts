import type { NatsConnection } from "@nats-io/nats-core";
import {
  MeshError,
  scopeAllows,
  scopeAllowsEmit,
  scopeAllowsStats,
  type VerifiedToken,
} from "@natsmesh/protocol";
import {
  rejection,
  startTokenGate,
  type TokenGate,
  type TokenGateOptions,
} from "@natsmesh/protocol/internal";
import type { Logger } from "pino";
import { KeyReadiness } from "./key-readiness.js";

/** Token checking of an agent. */
export interface AgentAuthOptions extends TokenGateOptions {
  /**
   * NATS micro discovery with auth on: `"open"` answers `$SRV.PING` and `$SRV.INFO` with names
   * only (no metadata or description), and `$SRV.STATS` only to a request whose
   * `Authorization` token holds `stats:<service>` (or `stats:*`); `"closed"` answers nothing.
   * @default "open"
   */
  discovery?: "open" | "closed";
}

/** The answer to a `Mesh-Token-Ref` this agent has no verified token for (one shared error). */
export const UNKNOWN_REF = rejection("unknown_ref");

/**
 * Verifies callers' tokens against the scope a method needs. Until it holds a key to verify
 * with, it is not ready: every check answers `UNAVAILABLE` (the caller's token may be fine;
 * this instance cannot tell), never a misleading `UNAUTHENTICATED`.
 */
export class AgentAuth {
  readonly #gate: TokenGate;
  readonly #keys: KeyReadiness;
  /** The last token and method scope that {@link AgentAuth.check} allowed. */
  #lastAllowed: VerifiedToken | undefined;
  #lastRequired: readonly [string, string] | undefined;

  private constructor(gate: TokenGate, keys: KeyReadiness) {
    this.#gate = gate;
    this.#keys = keys;
  }

  /**
   * Loads the key set and keeps it current. Rejects when it cannot ever load as configured: a
   * missing or invalid file (`TypeError`), a NATS user that may not read the `"kv"` key set
   * (`MeshError` `FORBIDDEN`). A `"kv"` key set that is not there yet starts the agent unready.
   */
  static async start(
    options: AgentAuthOptions,
    nc: NatsConnection,
    prefix: string,
    log: Logger,
  ): Promise<AgentAuth> {
    const keys = new KeyReadiness(options.secret !== undefined, log);
    const gate = await startTokenGate(options, {
      connection: nc,
      prefix,
      onKeys: (kids) => keys.loaded(kids),
      onError: (err) => keys.failed(err),
    });
    keys.started();
    return new AgentAuth(gate, keys);
  }

  /** Whether the agent holds a key (or secret) to verify tokens with. */
  get ready(): boolean {
    return this.#keys.ready;
  }

  /** Calls `listener` whenever {@link AgentAuth.ready} changes. */
  onReadiness(listener: () => void): void {
    this.#keys.listener = listener;
  }

  /** At each heartbeat: an unready agent says so in its log again (at most every 10 s). */
  remind(): void {
    this.#keys.remind();
  }

  /**
   * Checks the token of a call against the scope it needs (`[service, method]`): the
   * `Authorization` value when there is one, else the `Mesh-Token-Ref` value. Returns the
   * verified token or the error to answer ({@link UNKNOWN_REF} for a reference this agent
   * cannot resolve), synchronously on a cache hit and for every reference.
   */
  check(
    authorization: string | undefined,
    ref: string | undefined,
    required: readonly [string, string],
  ): VerifiedToken | MeshError | Promise<VerifiedToken | MeshError> {
    if (!this.#keys.ready) return KeyReadiness.UNREADY;
    const result =
      authorization === undefined && ref !== undefined
        ? this.#gate.checkRef(ref)
        : this.#gate.check(authorization);
    if (result instanceof Promise) return result.then((r) => allow(r, required));
    // The same verified token calling the same method again: its scopes (immutable) allowed it.
    if (result === this.#lastAllowed && required === this.#lastRequired) return result;
    const allowed = allow(result, required);
    if (!(allowed instanceof MeshError)) {
      this.#lastAllowed = allowed;
      this.#lastRequired = required;
    }
    return allowed;
  }

  /**
   * Checks an event's token: it must have been valid at `atMs` (when the stream stored the
   * event, or now for live events) and allow `emit:<event>`. Returns the verified token or the
   * `UNAUTHENTICATED`/`FORBIDDEN` error to dead-letter or drop the event with.
   */
  async checkEmit(
    authorization: string | undefined,
    event: string,
    atMs: number,
  ): Promise<VerifiedToken | MeshError> {
    if (!this.#keys.ready) return KeyReadiness.UNREADY;
    const result = await this.#gate.checkAt(authorization, atMs);
    if (result instanceof MeshError) return result;
    return scopeAllowsEmit(result.scopes, event)
      ? result
      : new MeshError("FORBIDDEN", `the emitter's token does not allow emit:${event}`);
  }

  /**
   * Checks the `Authorization` value of a `$SRV.STATS` request: its token must hold
   * `stats:<service>` or `stats:*`.
   */
  checkStats(
    authorization: string | undefined,
    service: string,
  ): VerifiedToken | MeshError | Promise<VerifiedToken | MeshError> {
    if (!this.#keys.ready) return KeyReadiness.UNREADY;
    const result = this.#gate.check(authorization);
    return result instanceof Promise
      ? result.then((r) => allowStats(r, service))
      : allowStats(result, service);
  }

  stop(): void {
    this.#gate.stop();
  }
}

function allowStats(result: VerifiedToken | MeshError, service: string): VerifiedToken | MeshError {
  if (result instanceof MeshError) return result;
  return scopeAllowsStats(result.scopes, service)
    ? result
    : new MeshError("FORBIDDEN", `the token's scope does not allow stats:${service}`);
}

function allow(
  result: VerifiedToken | MeshError,
  [service, method]: readonly [string, string],
): VerifiedToken | MeshError {
  if (result instanceof MeshError) return result;
  return scopeAllows(result.scopes, service, method)
    ? result
    : new MeshError("FORBIDDEN", `the token's scope does not allow ${service}.${method}`);
}
