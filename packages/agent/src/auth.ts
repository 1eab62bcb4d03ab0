import type { NatsConnection } from "@nats-io/nats-core";
import {
  bearerToken,
  createVerifier,
  type JwksSource,
  type KeySource,
  MeshError,
  scopeAllows,
  startKeySource,
  type TokenAlgorithm,
  type TokenVerifier,
  unauthenticated,
  type VerifiedToken,
} from "@natsmesh/protocol";
import type { Logger } from "pino";

/** Token checking of an agent. */
export interface AgentAuthOptions {
  /** Public keys: a JWKS, inline JSON, a file path (watched), or `"kv"` (the registry bucket's `jwks` key, watched). */
  jwks?: JwksSource;
  /** Shared secret for HS256; only when the mesh deliberately uses one. */
  secret?: string;
  /** Required `iss`. */
  issuer?: string | string[];
  /** @default "natsmesh" */
  audience?: string;
  /** @default ["EdDSA", "ES256", "RS256"] (+ "HS256" with a secret) */
  algorithms?: TokenAlgorithm[];
  /**
   * NATS micro discovery with auth on: `"open"` answers `$SRV.PING` and `$SRV.INFO` with names
   * only (no metadata, description or stats); `"closed"` answers nothing.
   * @default "open"
   */
  discovery?: "open" | "closed";
}

/** Verifies callers' tokens against scopes; keeps the key set current. */
export class AgentAuth {
  readonly #verifier: TokenVerifier;
  readonly #keys: KeySource;

  private constructor(verifier: TokenVerifier, keys: KeySource) {
    this.#verifier = verifier;
    this.#keys = keys;
  }

  static async start(
    options: AgentAuthOptions,
    nc: NatsConnection,
    prefix: string,
    log: Logger,
  ): Promise<AgentAuth> {
    if (options.jwks === undefined && options.secret === undefined) {
      throw new TypeError(
        'auth needs jwks (a key set, inline JSON, a file path or "kv") or a secret',
      );
    }
    const verifier = createVerifier({
      jwks: { keys: [] },
      ...(options.secret === undefined ? {} : { secret: options.secret }),
      ...(options.issuer === undefined ? {} : { issuer: options.issuer }),
      ...(options.audience === undefined ? {} : { audience: options.audience }),
      ...(options.algorithms === undefined ? {} : { algorithms: options.algorithms }),
    });
    const keys =
      options.jwks === undefined
        ? { kind: "static" as const, stop: () => undefined }
        : await startKeySource({
            source: options.jwks,
            connection: nc,
            prefix,
            onKeys: (jwks) => {
              verifier.setJwks(jwks);
              log.info({ kids: jwks.keys.map((k) => k.kid) }, "key set loaded");
            },
            onError: (err) =>
              log.error({ err }, "key set update refused; keeping the previous keys"),
          });
    return new AgentAuth(verifier, keys);
  }

  /**
   * Checks the `Authorization` value of a call against the scope it needs (`[service, method]`).
   * Returns the verified token or the error to answer, synchronously on a cache hit.
   */
  check(
    authorization: string | undefined,
    required: readonly [string, string],
  ): VerifiedToken | MeshError | Promise<VerifiedToken | MeshError> {
    const token = bearerToken(authorization);
    if (token === undefined) {
      return authorization === undefined
        ? unauthenticated("missing", "no token: send Authorization: Bearer <jwt>")
        : unauthenticated("malformed", "Authorization must be Bearer <jwt>");
    }
    const hit = this.#verifier.cached(token);
    if (hit !== undefined) return allow(hit, required);
    return this.#verifier.verify(token).then(
      (verified) => allow(verified, required),
      (err: unknown) =>
        err instanceof MeshError ? err : unauthenticated("malformed", "token is malformed", err),
    );
  }

  stop(): void {
    this.#keys.stop();
  }
}

function allow(
  token: VerifiedToken,
  [service, method]: readonly [string, string],
): VerifiedToken | MeshError {
  return scopeAllows(token.scopes, service, method)
    ? token
    : new MeshError("FORBIDDEN", `the token's scope does not allow ${service}.${method}`);
}
