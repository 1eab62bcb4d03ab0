import type { NatsConnection } from "@nats-io/nats-core";
import type { MeshError } from "../errors.js";
import { isIntInRange } from "../integers.js";
import { TokenAlgorithm } from "./algorithms.js";
import { type JwksSource, type KeySource, startKeySource } from "./key-source.js";
import { assertJwks } from "./keys.js";
import { rejection } from "./rejections.js";
import {
  bearerToken,
  createVerifier,
  type TokenVerifier,
  VERIFIER_DEFAULTS,
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
  /**
   * Longest token lifetime accepted, in seconds (`exp - iat`, or `exp - now` without `iat`).
   * @default 86400 (24 h), or `MESH_MAX_TOKEN_LIFETIME`
   */
  maxTokenLifetimeSec?: number;
  /**
   * Clock skew allowed on `exp`, `nbf` and `iat`, in seconds (0–300).
   * @default 30
   */
  clockToleranceSec?: number;
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
  /**
   * What {@link TokenGate.check} can tell without a signature check, synchronously; `undefined`
   * when only one can tell. Lets a caller bound the signature checks it starts.
   */
  known(authorization: string | undefined): VerifiedToken | MeshError | undefined;
  /** The verified token of an `Authorization` value if it is cached, the cheapest look of all. */
  cached(authorization: string | undefined): VerifiedToken | undefined;
  /**
   * The verified token a `Mesh-Token-Ref` value stands for, when this gate verified that token
   * itself and still holds it; else `UNAUTHENTICATED` with reason `unknown_ref` (the caller then
   * sends the token in full). Always synchronous.
   */
  checkRef(ref: string): VerifiedToken | MeshError;
  /**
   * Like {@link TokenGate.check}, but the token must have been valid at `atMs` (Unix epoch ms),
   * not now: the check of an event's token against the time the stream stored it.
   */
  checkAt(authorization: string | undefined, atMs: number): Promise<VerifiedToken | MeshError>;
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
  const life = o.maxTokenLifetimeSec;
  if (life !== undefined && !isIntInRange(life, 1, Number.MAX_SAFE_INTEGER)) {
    throw new TypeError(
      `auth.maxTokenLifetimeSec must be a whole number of seconds ≥ 1 (default ${VERIFIER_DEFAULTS.maxTokenLifetimeSec}), got ${String(life)}`,
    );
  }
  const skew = o.clockToleranceSec;
  if (skew !== undefined && !isIntInRange(skew, 0, 300)) {
    throw new TypeError(
      `auth.clockToleranceSec must be an integer from 0 to 300, got ${String(skew)}`,
    );
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
    ...(o.maxTokenLifetimeSec === undefined ? {} : { maxTokenLifetimeSec: o.maxTokenLifetimeSec }),
    ...(o.clockToleranceSec === undefined ? {} : { clockToleranceSec: o.clockToleranceSec }),
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
  const bearer = (authorization: string | undefined): string | MeshError => {
    const token = bearerToken(authorization);
    if (token !== undefined) return token;
    return rejection(authorization === undefined ? "missing" : "malformed");
  };
  return {
    check(authorization) {
      const token = bearer(authorization);
      return typeof token === "string" ? verifier.check(token) : token;
    },
    known(authorization) {
      const token = bearer(authorization);
      return typeof token === "string" ? verifier.known(token) : token;
    },
    cached(authorization) {
      const token = bearerToken(authorization);
      return token === undefined ? undefined : verifier.cached(token);
    },
    checkRef(ref) {
      return verifier.cachedByRef(ref) ?? rejection("unknown_ref");
    },
    async checkAt(authorization, atMs) {
      const token = bearer(authorization);
      return typeof token === "string" ? verifier.checkAt(token, atMs) : token;
    },
    stop: () => keys.stop(),
  };
}
