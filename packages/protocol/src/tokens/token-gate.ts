import type { NatsConnection } from "@nats-io/nats-core";
import type { MeshError } from "../errors.js";
import { TokenAlgorithm } from "./algorithms.js";
import { type JwksSource, type KeySource, startKeySource } from "./key-source.js";
import { assertJwks } from "./keys.js";
import {
  bearerToken,
  createVerifier,
  type TokenVerifier,
  unauthenticated,
  type VerifiedToken,
} from "./verifier.js";

/** What a process that checks tokens is configured with (agents' and registries' `auth`). */
export interface TokenGateOptions {
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
}

/** Where a gate gets its keys and reports key changes. */
export interface TokenGateContext {
  connection: NatsConnection;
  prefix: string;
  onKeys?: (kids: (string | undefined)[]) => void;
  onError?: (err: unknown) => void;
}

/** Verifies `Authorization: Bearer <jwt>` values against a key set that rotates without restarts. */
export interface TokenGate {
  /**
   * The verified token of an `Authorization` value, or the `UNAUTHENTICATED` error to answer.
   * Synchronous on a cache hit; a promise only when the token must be verified.
   */
  check(
    authorization: string | undefined,
  ): VerifiedToken | MeshError | Promise<VerifiedToken | MeshError>;
  stop(): void;
}

/** Throws `TypeError` unless `options` is a usable token configuration. */
export function checkTokenGateOptions(options: unknown): TokenGateOptions {
  if (options === null || typeof options !== "object")
    throw new TypeError("auth must be an object");
  const o = options as TokenGateOptions;
  if (o.jwks === undefined && o.secret === undefined) {
    throw new TypeError(
      'auth needs jwks (a key set, inline JSON, a file path or "kv") or a secret',
    );
  }
  if (o.jwks !== undefined && typeof o.jwks !== "string") assertJwks(o.jwks);
  for (const alg of o.algorithms ?? []) {
    if (!Object.values(TokenAlgorithm).includes(alg))
      throw new TypeError(`algorithm ${String(alg)} is not allowed`);
  }
  return { ...o };
}

/** Starts a gate: loads the key set (a missing file is a `TypeError`) and keeps it current. */
export async function startTokenGate(
  options: TokenGateOptions,
  context: TokenGateContext,
): Promise<TokenGate> {
  const o = checkTokenGateOptions(options);
  const verifier: TokenVerifier = createVerifier({
    jwks: { keys: [] },
    ...(o.secret === undefined ? {} : { secret: o.secret }),
    ...(o.issuer === undefined ? {} : { issuer: o.issuer }),
    ...(o.audience === undefined ? {} : { audience: o.audience }),
    ...(o.algorithms === undefined ? {} : { algorithms: o.algorithms }),
  });
  const keys: KeySource =
    o.jwks === undefined
      ? { kind: "static", stop: () => undefined }
      : await startKeySource({
          source: o.jwks,
          connection: context.connection,
          prefix: context.prefix,
          onKeys: (jwks) => {
            verifier.setJwks(jwks);
            context.onKeys?.(jwks.keys.map((k) => k.kid));
          },
          ...(context.onError === undefined ? {} : { onError: context.onError }),
        });
  return {
    check(authorization) {
      const token = bearerToken(authorization);
      if (token === undefined) {
        return authorization === undefined
          ? unauthenticated("missing", "no token: send Authorization: Bearer <jwt>")
          : unauthenticated("malformed", "Authorization must be Bearer <jwt>");
      }
      const hit = verifier.cached(token);
      if (hit !== undefined) return hit;
      return verifier.verify(token).catch((err: MeshError) => err);
    },
    stop: () => keys.stop(),
  };
}
