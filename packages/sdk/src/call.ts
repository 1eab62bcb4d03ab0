import { setTimeout as sleep } from "node:timers/promises";
import { InvalidArgumentError, type Msg, type NatsConnection, nuid } from "@nats-io/nats-core";
import {
  type Codec,
  codecs,
  errorFromReply,
  Header,
  type InstanceRecord,
  MeshError,
  type Subjects,
} from "@natsmesh/protocol";
import {
  checkInt,
  checkPayloadSize,
  childTraceparent,
  MSGPACK_REPLY_HEADER,
  rawHeaderBlock,
  sameBytes,
  type TokenProvider,
  toMeshError,
} from "@natsmesh/protocol/internal";
import { type Balancer, checkBalance } from "./balancer.js";
import type { CallTracker } from "./call-tracker.js";
import { checkVersionFilter, type InstanceFilter } from "./filters.js";
import type { Link } from "./link.js";
import { checkCodec, type RequestOptions, type ResolvedMeshOptions } from "./options.js";
import type { PresenceCache } from "./presence-cache.js";
import type { ReplyMux } from "./reply-mux.js";
import { renderUserHeaders, requestHeaders } from "./request-headers.js";
import { retryDecision } from "./retry.js";

/** What every call of one mesh shares. */
export interface CallScope {
  readonly nc: NatsConnection;
  readonly mux: ReplyMux;
  readonly link: Link;
  readonly subjects: Subjects;
  readonly options: ResolvedMeshOptions;
  /** Presence view; `undefined` when the mesh runs with `presence: false`. */
  readonly presence: PresenceCache | undefined;
  readonly balancer: Balancer;
  /** The mesh's token, when it has one. */
  readonly token: TokenProvider | undefined;
  readonly calls: CallTracker;
}

function decodeReply(msg: Msg, codec: Codec): unknown {
  try {
    return codec.decode(msg.data);
  } catch (err) {
    throw new MeshError("INTERNAL", "the reply did not decode", { cause: err });
  }
}

/**
 * Reads a reply: "no responders" (a 503 status with no body) is `UNAVAILABLE`; error headers
 * give the sender's error; anything else is the decoded value.
 */
function readReply(msg: Msg, codec: Codec): unknown {
  // The common case, an agent's success reply, is recognised by its exact header bytes.
  const raw = rawHeaderBlock(msg);
  if (raw === undefined || (raw !== null && sameBytes(raw, MSGPACK_REPLY_HEADER))) {
    return decodeReply(msg, codec);
  }
  const h = msg.headers;
  if (h === undefined) return decodeReply(msg, codec);
  if (msg.data.length === 0 && h.code === 503) {
    throw new MeshError("UNAVAILABLE", "no instance is listening (no responders)", {
      data: { noResponders: true },
    });
  }
  // Decoded once: an error reply's body is read for its data, a success's is the value.
  let body: unknown;
  let undecodable: unknown;
  try {
    body = codec.decode(msg.data);
  } catch (e) {
    undecodable = e;
  }
  const err = errorFromReply(h, body);
  if (err !== undefined) throw err;
  if (undecodable !== undefined) {
    throw new MeshError("INTERNAL", "the reply did not decode", { cause: undecodable });
  }
  return body;
}

/** Runs one logical call: target choice, attempts, retries, failover, deadline, cancellation. */
export async function call(
  scope: CallScope,
  service: string,
  method: string,
  payload: unknown,
  options: RequestOptions = {},
): Promise<unknown> {
  scope.calls.begin();
  try {
    const defaults = scope.options;
    const queueSubject = scope.subjects.service(service, method);
    const codec = codecs[options.codec === undefined ? defaults.codec : checkCodec(options.codec)];
    const timeout =
      options.timeout === undefined
        ? defaults.timeoutMs
        : checkInt(options.timeout, "timeout", 1, 3_600_000);
    const retries =
      options.retries === undefined
        ? defaults.retries
        : checkInt(options.retries, "retries", 0, 100);
    const strategy =
      options.balance === undefined ? defaults.balance : checkBalance(options.balance);
    const filter = strategy === "queue" ? NO_FILTER : instanceFilter(options);
    const { signal, idempotent = false } = options;
    signal?.throwIfAborted();

    const data = codec.encode(payload);
    const tooLarge = checkPayloadSize(data.length, scope.nc.info?.max_payload ?? 0);
    if (tooLarge !== undefined) throw tooLarge;

    const start = Date.now();
    const deadline =
      options.deadline === undefined
        ? start + timeout
        : Math.min(
            checkInt(options.deadline, "deadline", 1, Number.MAX_SAFE_INTEGER),
            start + timeout,
          );
    const attemptTimeout = idempotent
      ? options.attemptTimeout === undefined
        ? Math.max(1, Math.ceil((deadline - start) / (retries + 1)))
        : checkInt(options.attemptTimeout, "attemptTimeout", 1, 3_600_000)
      : Number.POSITIVE_INFINITY;
    const user = options.headers;
    const traceparent = childTraceparent(user?.[Header.TraceParent]);
    const userLines = renderUserHeaders(user);
    const idempotencyKey = idempotent ? checkIdempotencyKey(options.idempotencyKey) : undefined;
    const auth = bearer(scope, options.token);
    const authorization = typeof auth === "object" ? await auth : auth;
    const { presence, balancer } = scope;
    let tried: Set<string> | undefined;
    let retried = 0;

    for (let attempt = 1; ; attempt++) {
      if (!scope.link.up) await scope.link.waitUp(deadline, signal);
      let target: InstanceRecord | undefined;
      if (strategy !== "queue" && presence !== undefined) {
        if (!presence.ready) await presence.whenReady();
        target = balancer.pick(strategy, service, method, presence.live(service), filter, tried);
      }
      const subject =
        target === undefined ? queueSubject : scope.subjects.instance(service, target.id, method);
      const attemptDeadline = Math.min(deadline, Date.now() + attemptTimeout);
      const h = requestHeaders(
        codec,
        attemptDeadline,
        attempt,
        traceparent,
        idempotencyKey,
        authorization,
        userLines,
      );
      const sent = performance.now();
      if (target !== undefined) balancer.started(target.id);
      let err: MeshError;
      try {
        const msg = await scope.mux.request(subject, data, h, attemptDeadline, signal);
        if (target !== undefined) balancer.finished(target.id, performance.now() - sent);
        return readReply(msg, codec);
      } catch (thrown) {
        if (target !== undefined) balancer.finished(target.id, performance.now() - sent);
        if (signal?.aborted) throw signal.reason;
        if (thrown instanceof InvalidArgumentError) {
          throw new MeshError(
            "PAYLOAD_TOO_LARGE",
            "payload and headers exceed the server's max_payload",
            { cause: thrown },
          );
        }
        err = toMeshError(thrown);
      }
      const decision = retryDecision(
        err,
        {
          direct: target !== undefined,
          idempotent,
          retried,
          retries,
          remainingMs: deadline - Date.now(),
        },
        Math.random,
      );
      if (decision.action === "fail") throw err;
      if (target !== undefined) {
        tried ??= new Set();
        tried.add(target.id);
      }
      if (decision.action === "next-instance") {
        // The instance is gone but presence does not know yet: hide it from later picks.
        presence?.markDown(service, target!.id);
        continue;
      }
      retried++;
      if (decision.pauseMs > 0) {
        await sleep(decision.pauseMs);
        signal?.throwIfAborted();
      }
    }
  } finally {
    scope.calls.end();
  }
}

/** A caller's idempotency key travels in a header: printable ASCII, bounded. Default: a NUID. */
export function checkIdempotencyKey(key: unknown): string {
  if (key === undefined) return nuid.next();
  if (typeof key !== "string" || !/^[\x21-\x7e]{1,128}$/.test(key)) {
    throw new TypeError("idempotencyKey must be 1-128 printable ASCII characters without spaces");
  }
  return key;
}

/** The `Authorization` value of a call: its own token, else the mesh's (fetched if need be). */
export function bearer(
  scope: CallScope,
  own: string | undefined,
): string | undefined | Promise<string> {
  if (own !== undefined) {
    if (typeof own !== "string" || own.length === 0 || /[\r\n]/.test(own)) {
      throw new TypeError("token must be a non-empty string without CR/LF");
    }
    return `Bearer ${own}`;
  }
  const provider = scope.token;
  if (provider === undefined) return undefined;
  const current = provider.current();
  if (current !== undefined) return `Bearer ${current}`;
  return provider.get().then(
    (token) => `Bearer ${token}`,
    (err: unknown) => {
      throw new MeshError("UNAUTHENTICATED", "the mesh's token function failed", { cause: err });
    },
  );
}

const NO_FILTER: InstanceFilter = Object.freeze({});

function instanceFilter(options: RequestOptions): InstanceFilter {
  const filter: InstanceFilter = {};
  if (options.version !== undefined) filter.version = checkVersionFilter(options.version);
  if (options.zone !== undefined) filter.zone = options.zone;
  if (options.metadata !== undefined) filter.metadata = options.metadata;
  return filter;
}
