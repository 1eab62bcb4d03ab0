/**
 * Machinery the natsmesh packages share and users do not need: hot-path header reading,
 * connection defaults, environment readers, token gates and providers. Not a stable API:
 * it changes with the packages that use it. The wire contract is the main entry.
 *
 * @module
 */

export { checkPayloadSize, decodeScanned } from "./codec.js";
export {
  type ConnectionIdentity,
  connectionOptions,
  DEFAULT_SERVER,
  FLUSH_THRESHOLD_BYTES,
  type IdentityOptions,
  identityOptions,
  parseServers,
  resolveIdentity,
} from "./connection.js";
export {
  type ConnectionEvents,
  type ConnectionFollower,
  followConnection,
} from "./connection-status.js";
export { withDefaults } from "./defaults.js";
export {
  authFromEnv,
  DEFAULT_LOG_LEVEL,
  heartbeatMsFromEnv,
  inboxPrefixesFromEnv,
  inboxPrefixFromEnv,
  LOG_LEVELS,
  type LogLevel,
  logLevelFromEnv,
  maxTokenLifetimeFromEnv,
  metricsFromEnv,
  prefixFromEnv,
  serversFromEnv,
  tokenFromEnv,
} from "./environment.js";
export { isValidErrorCode, toMeshError } from "./error-reply.js";
export {
  type DeadLetter,
  type DeadLetterInfo,
  deadLetterHeaders,
  INVALID_EVENT,
  readDeadLetter,
  replayHeaders,
} from "./events/dead-letter.js";
export {
  getDeadLetter,
  type ListDeadLettersOptions,
  listDeadLetters,
  type PurgeDeadLettersOptions,
  purgeDeadLetters,
  type ReplayResult,
  replayDeadLetter,
  type StoredDeadLetter,
} from "./events/dead-letter-store.js";
export {
  type EventGroup,
  type EventsOverview,
  readEventsOverview,
  type StreamSummary,
} from "./events/groups.js";
export { assertEventName, assertEventPattern } from "./events/names.js";
export {
  type EnsuredStream,
  EVENT_STREAM_DEFAULTS,
  type EventStreamOptions,
  ensureEventStreams,
  resolveEventStreamOptions,
} from "./events/streams.js";
export { headerText, parseAttempt, parseDeadline } from "./headers.js";
export { closeServer, listen } from "./http-server.js";
export { checkInt, isIntInRange } from "./integers.js";
export { LatencyHistogram } from "./latency-histogram.js";
export {
  MAX_SERIES_PER_METRIC,
  MeshMetrics,
  mergeReadings,
  meshMetrics,
} from "./metrics/mesh-metrics.js";
export { natsmeshMetricProducer, readingProducer } from "./metrics/metric-producer.js";
export {
  Counter,
  CountSeries,
  DurationHistogram,
  DurationSeries,
  type InstrumentDescriptor,
  InstrumentKind,
  type InstrumentReading,
  MetricSet,
  type Observer,
  type ReadingPoint,
  type ScopeReading,
} from "./metrics/metric-set.js";
export { assertName, assertPrefix } from "./names.js";
export {
  NATS_CREDENTIAL_VARIABLES,
  natsAuthenticator,
  natsCredentialsFromEnv,
  type ResolvedNatsCredentials,
  resolveNatsCredentials,
} from "./nats-credentials.js";
export { DEFAULT_DECODE_LIMITS, type DecodeLimits, scanPayload } from "./payload-scan.js";
export { lookupPresence, type PresenceLookup } from "./presence-lookup.js";
export {
  DEFAULT_PRESENCE_QUOTAS,
  type PresenceQuotas,
  QUOTA_EXCEEDED,
  resolvePresenceQuotas,
} from "./presence-quotas.js";
export { Publisher } from "./publisher.js";
export {
  HeaderBlock,
  HeaderNames,
  MSGPACK_REPLY_HEADER,
  rawHeaderBlock,
  rawMessage,
  rawReply,
  rawSubject,
  sameBytes,
} from "./raw-headers.js";
export {
  assertInboxPrefix,
  DEFAULT_INBOX_PREFIX,
  inboxPrefixOf,
  MAX_REPLY_SUBJECT_LENGTH,
  ReplySubjectRule,
} from "./reply-subject.js";
export { lastToken, parseEventPatternSubject } from "./subjects.js";
export {
  Attr,
  checkProvider,
  DURATION_BUCKETS_S,
  errorType,
  MethodAttributes,
  type MetricAttributes,
  RpcAttributes,
  refuseMeterProvider,
  Telemetry,
} from "./telemetry-attributes.js";
export { LOG_INTERVAL_MS, LOG_KEYS_PER_INTERVAL, ThrottledLog } from "./throttled-log.js";
export {
  type JwksSource,
  type KeySource,
  type KeySourceOptions,
  MAX_JWKS_BYTES,
  parseJwks,
  startKeySource,
} from "./tokens/key-source.js";
export { rejection, unauthenticated } from "./tokens/rejections.js";
export { unverifiedScope } from "./tokens/scope.js";
export type { TokenGate, TokenGateContext, TokenGateOptions } from "./tokens/token-gate.js";
export { checkTokenGateOptions, startTokenGate } from "./tokens/token-gate.js";
export { type TokenProvider, type TokenSource, tokenProvider } from "./tokens/token-provider.js";
export { TOKEN_REF_LENGTH, tokenRef } from "./tokens/token-ref.js";
export { bearerToken } from "./tokens/verifier.js";
export {
  boundedTracestate,
  childTraceparent,
  MAX_TRACESTATE_LENGTH,
  parseTraceparent,
  type TraceParent,
} from "./trace-context.js";
export { activeOr, extractTrace, injectTrace, TracerSource } from "./tracing.js";
export { delay, settledWithin, withTimeout } from "./waits.js";
