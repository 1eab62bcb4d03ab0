import { jetstreamManager } from "@nats-io/jetstream";
import { codecs, MeshError, scopeAllowsEmit } from "@natsmesh/protocol";
import {
  checkInt,
  checkPayloadSize,
  delay,
  ensureEventStreams,
  errorType,
  toMeshError,
  unverifiedScope,
} from "@natsmesh/protocol/internal";
import type { Span } from "@opentelemetry/api";
import type { Logger } from "pino";
import type { CallScope } from "../call.js";
import { bearer, checkIdempotencyKey } from "../call-options.js";
import { CallTrace, endSpan } from "../call-trace.js";
import { checkCodec } from "../options.js";
import { renderUserHeaders } from "../request-headers.js";
import type { BroadcastOptions, EmitOptions, EmitResult } from "./emit-options.js";
import { type EventHeaders, eventHeaders } from "./event-headers.js";
import { readPubAck } from "./pub-ack.js";

/** Longest wait for one publish acknowledgement; a lost one is retried with the same id. */
const ATTEMPT_MS = 2000;
/** Pause before publishing again after a retryable refusal (no quorum, stream just created). */
const RETRY_PAUSE_MS = 100;
/** Least time between two attempts to create missing streams. */
const ENSURE_EVERY_MS = 1000;

/**
 * Publishes events: `emit()` through JetStream (stored, acknowledged, deduplicated by
 * `Nats-Msg-Id`), `broadcast()` as a plain publish. Emits share the SDK's reply subscription, so
 * any number of them pipeline on the connection without a round trip each.
 */
export class Emitter {
  readonly #scope: CallScope;
  readonly #log: Logger;
  #streams: Promise<void> | undefined;
  #ensuredAt = 0;
  #scopeOf: [string, string[] | undefined] | undefined;

  constructor(scope: CallScope, log: Logger) {
    this.#scope = scope;
    this.#log = log;
  }

  async emit(name: string, payload: unknown, options: EmitOptions = {}): Promise<EmitResult> {
    const scope = this.#scope;
    // Checks the name (TypeError) as it builds the subject.
    const subject = scope.subjects.event(name);
    const timeout =
      options.timeout === undefined
        ? scope.options.timeoutMs
        : checkInt(options.timeout, "timeout", 1, 3_600_000);
    const { signal } = options;
    signal?.throwIfAborted();
    const deadline = Date.now() + timeout;
    const id = checkIdempotencyKey(options.idempotencyKey);
    const auth = bearer(scope, options.token);
    const authorization = typeof auth === "object" ? await auth : auth;
    const [data, h, span] = this.#message(name, payload, id, authorization, options, "durable");
    try {
      const result = await this.#store(subject, data, h, id, deadline, signal);
      endSpan(span, undefined);
      return result;
    } catch (err) {
      endSpan(span, errorType(err), err instanceof Error ? err.message : undefined);
      throw err;
    }
  }

  /** Publishes until the stream stores the event, or the deadline passes. */
  async #store(
    subject: string,
    data: Uint8Array,
    h: EventHeaders,
    id: string,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<EmitResult> {
    const scope = this.#scope;
    // The last retryable refusal: when a later attempt merely runs out of the emit's time, this
    // is why the event was not stored, and the caller gets it rather than a bare time-out (with
    // JetStream off, an emit fails UNAVAILABLE however slowly the host answers its last try).
    let refused: MeshError | undefined;
    for (;;) {
      if (!scope.link.up) await scope.link.waitUp(deadline, signal);
      const attemptDeadline = Math.min(deadline, Date.now() + ATTEMPT_MS);
      let ack: ReturnType<typeof readPubAck>;
      try {
        ack = readPubAck(await scope.mux.request(subject, data, h.bytes, attemptDeadline, signal));
      } catch (thrown) {
        if (signal?.aborted) throw signal.reason;
        const err = toMeshError(thrown);
        // A lost acknowledgement is asked for again under the same id: stored once either way.
        if (err.code !== "DEADLINE_EXCEEDED") throw err;
        if (Date.now() >= deadline) throw refused ?? err;
        continue;
      }
      if (ack.kind === "stored") {
        return { id, stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
      }
      let retry: MeshError;
      if (ack.kind === "no-stream") {
        // Nobody stores the subject: the streams do not exist yet (the first part that needs them
        // creates them), or their leader is being elected in a cluster, or JetStream is off.
        const noStream = await this.#ensureStreams().catch((err: unknown) => err);
        retry = new MeshError("UNAVAILABLE", `no stream stored ${subject} in time`, {
          ...(noStream === undefined ? {} : { cause: noStream }),
        });
      } else if (ack.retry) {
        retry = ack.error;
      } else {
        throw ack.error;
      }
      refused = retry;
      if (Date.now() + RETRY_PAUSE_MS >= deadline) throw retry;
      if (!(await delay(RETRY_PAUSE_MS, signal))) throw signal?.reason;
    }
  }

  broadcast(name: string, payload: unknown, options: BroadcastOptions = {}): void {
    const scope = this.#scope;
    const subject = scope.subjects.event(name);
    const id = checkIdempotencyKey(undefined);
    const auth = bearer(scope, options.token);
    const send = (authorization: string | undefined) => {
      const [data, h, span] = this.#message(name, payload, id, authorization, options, "broadcast");
      scope.nc.publish(subject, data, { headers: h.headers });
      endSpan(span, undefined);
      scope.metrics.published(name, "broadcast", undefined);
    };
    if (typeof auth !== "object") {
      send(auth);
      return;
    }
    // The mesh's token is still being fetched: publish once it is there. Nobody awaits this, so
    // a failure is logged rather than thrown.
    auth.then(send).catch((err: unknown) => {
      scope.metrics.published(name, "broadcast", errorType(err));
      this.#log.error({ err, event: name }, "broadcast could not be published");
    });
  }

  /** Encodes the payload and renders the headers; checks the emit scope and the size. */
  #message(
    name: string,
    payload: unknown,
    id: string,
    authorization: string | undefined,
    options: EmitOptions | BroadcastOptions,
    mode: "durable" | "broadcast",
  ): [Uint8Array, EventHeaders, Span | undefined] {
    const scope = this.#scope;
    if (authorization !== undefined) this.#checkScope(authorization, name);
    const codec =
      codecs[options.codec === undefined ? scope.options.codec : checkCodec(options.codec)];
    const user = options.headers;
    const data = codec.encode(payload);
    const trace = CallTrace.of(scope.tracing, user);
    const userLines = renderUserHeaders(user, trace.traced);
    const tooLarge = checkPayloadSize(data.length, scope.nc.info?.max_payload ?? 0);
    if (tooLarge !== undefined) throw tooLarge;
    const [span, traceLines] = trace.publish(name, mode);
    const h = eventHeaders(codec, id, traceLines, authorization, userLines);
    const withHeaders = checkPayloadSize(data.length + h.size, scope.nc.info?.max_payload ?? 0);
    if (withHeaders !== undefined) {
      endSpan(span, withHeaders.code, withHeaders.message);
      throw withHeaders;
    }
    return [data, h, span];
  }

  /**
   * Refuses early what every consumer would dead-letter: a token whose scope lacks
   * `emit:<event>`. Read without verification, so it only ever refuses.
   */
  #checkScope(authorization: string, name: string): void {
    const token = authorization.slice(7);
    if (this.#scopeOf?.[0] !== token) this.#scopeOf = [token, unverifiedScope(token)];
    const scopes = this.#scopeOf[1];
    if (scopes !== undefined && !scopeAllowsEmit(scopes, name)) {
      throw new MeshError("FORBIDDEN", `the token's scope does not allow emit:${name}`);
    }
  }

  /**
   * Creates the streams when missing. Concurrent emits share one attempt, and attempts are at
   * least {@link ENSURE_EVERY_MS} apart, so a stream leader election does not flood the API.
   */
  #ensureStreams(): Promise<void> {
    if (this.#streams === undefined && Date.now() - this.#ensuredAt < ENSURE_EVERY_MS) {
      return Promise.resolve();
    }
    this.#streams ??= (async () => {
      this.#ensuredAt = Date.now();
      const { nc, options } = this.#scope;
      // No account check on the way: the streams' own calls say soon enough if JetStream is off.
      const jsm = await jetstreamManager(nc, { checkAPI: false });
      for (const s of await ensureEventStreams(jsm, options.prefix, options.streams)) {
        if (s.created) this.#log.info({ stream: s.name }, "created the stream");
        if (s.differences.length > 0) {
          this.#log.warn(
            { stream: s.name, differences: s.differences },
            "the stream exists with other settings; using it as it is",
          );
        }
      }
    })().finally(() => {
      // Not remembered: a stream deleted later is created again by the next emit that misses it.
      this.#streams = undefined;
    });
    return this.#streams;
  }
}
