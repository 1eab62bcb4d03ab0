import type { NatsConnection } from "@nats-io/nats-core";
import {
  MeshError,
  scopeAllows,
  scopeAllowsEmit,
  scopeAllowsStats,
  type VerifiedToken,
} from "@natsmesh/protocol";
import { startTokenGate, type TokenGate, type TokenGateOptions } from "@natsmesh/protocol/internal";
import type { Logger } from "pino";

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

/** Verifies callers' tokens against the scope a method needs. */
export class AgentAuth {
  readonly #gate: TokenGate;

  private constructor(gate: TokenGate) {
    this.#gate = gate;
  }

  static async start(
    options: AgentAuthOptions,
    nc: NatsConnection,
    prefix: string,
    log: Logger,
  ): Promise<AgentAuth> {
    const gate = await startTokenGate(options, {
      connection: nc,
      prefix,
      onKeys: (kids) => log.info({ kids }, "key set loaded"),
      onError: (err) => log.error({ err }, "key set update refused; keeping the previous keys"),
    });
    return new AgentAuth(gate);
  }

  /**
   * Checks the `Authorization` value of a call against the scope it needs (`[service, method]`).
   * Returns the verified token or the error to answer, synchronously on a cache hit.
   */
  check(
    authorization: string | undefined,
    required: readonly [string, string],
  ): VerifiedToken | MeshError | Promise<VerifiedToken | MeshError> {
    const result = this.#gate.check(authorization);
    return result instanceof Promise
      ? result.then((r) => allow(r, required))
      : allow(result, required);
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
