/**
 * The natsmesh wire contract: subjects, headers, codecs, errors, presence records and tokens,
 * what a compatible client or agent needs. Machinery the natsmesh packages share (hot-path
 * header reading, connection defaults, key sources, token refresh) is `@natsmesh/protocol/internal`.
 *
 * @module
 */

export { type Codec, type CodecName, ContentType, codecForContentType, codecs } from "./codec.js";
export { type ErrorBody, errorFromReply, errorReply } from "./error-reply.js";
export type { MeshErrorCode, MeshErrorOptions } from "./errors.js";
export { ErrorCodes, isMeshError, MeshError } from "./errors.js";
export {
  EventMode,
  eventMatches,
  isEventMode,
  isValidEventName,
  isValidEventPattern,
  MAX_EVENT_LENGTH,
  MAX_EVENT_TOKENS,
  patternId,
} from "./events/names.js";
export { DUPLICATE_WINDOW_MS, deadLetterStream, eventStream } from "./events/streams.js";
export { Header, type HeaderName } from "./headers.js";
export {
  LATENCY_BUCKETS,
  LATENCY_OVERFLOW_US,
  latencyBucket,
  latencyBucketLower,
  latencyBucketUpper,
  latencyQuantile,
} from "./latency-histogram.js";
export { isValidName, MAX_NAME_LENGTH } from "./names.js";
export type { NatsCredentials } from "./nats-credentials.js";
export type {
  DownMessage,
  EventSubscription,
  HeartbeatMessage,
  InstanceRecord,
  PresenceEntryOptions,
  PresenceMessage,
  UpMessage,
  Validation,
} from "./presence.js";
export {
  DEFAULT_WEIGHT,
  InstanceStatus,
  PresenceLimits,
  parsePresenceEntry,
  parsePresenceKey,
  parsePresenceMessage,
  presenceBucket,
  presenceKey,
  registryBucket,
  validateInstanceRecord,
} from "./presence.js";
export { DEFAULT_PRESENCE_QUOTAS, type PresenceQuotas } from "./presence-quotas.js";
export type { PresenceSignature, PresenceSigner } from "./presence-signature.js";
export {
  canonicalRecord,
  createPresenceSigner,
  PresenceKeys,
  presenceSigningInput,
  SignatureProblem,
} from "./presence-signature.js";
export type { EndpointStatsData, ParsedStatsData } from "./stats-data.js";
export { OTHER_ERRORS, parseStatsData, StatsLimits } from "./stats-data.js";
export type { ParsedSubject, Subjects } from "./subjects.js";
export {
  DEFAULT_PREFIX,
  parseDeadLetterSubject,
  parseEventSubject,
  parseSubject,
  QUEUE_GROUP,
  subjects,
} from "./subjects.js";
export { DEFAULT_AUDIENCE, KeyAlgorithm, TokenAlgorithm } from "./tokens/algorithms.js";
export { type IssueTokenOptions, issueToken } from "./tokens/issue.js";
export { JWKS_KEY, PRESENCE_JWKS_KEY } from "./tokens/key-source.js";
export type { GenerateKeyPairOptions, MeshKeyPair } from "./tokens/keys.js";
export { assertJwks, generateKeyPair, type JsonWebKeySet } from "./tokens/keys.js";
export { TokenRejection } from "./tokens/rejections.js";
export {
  parseScope,
  scopeAllows,
  scopeAllowsAnnounce,
  scopeAllowsEmit,
  scopeAllowsStats,
} from "./tokens/scope.js";
export type { TokenVerifier, TokenVerifierOptions, VerifiedToken } from "./tokens/verifier.js";
export { createVerifier, VERIFIER_DEFAULTS } from "./tokens/verifier.js";
