/**
 * The natsmesh wire contract: subjects, headers, codecs, errors, presence records and tokens.
 * Every other package speaks to the wire through these names.
 *
 * @module
 */

export {
  type Codec,
  type CodecName,
  ContentType,
  checkPayloadSize,
  codecForContentType,
  codecs,
} from "./codec.js";
export {
  CONNECTION_DEFAULTS,
  connectionOptions,
  DEFAULT_SERVER,
  parseServers,
} from "./connection.js";
export { authFromEnv, tokenFromEnv } from "./environment.js";
export {
  type ErrorBody,
  errorFromReply,
  errorReply,
  isValidErrorCode,
  toMeshError,
} from "./error-reply.js";
export {
  ErrorCodes,
  isKnownCode,
  isMeshError,
  MeshError,
  type MeshErrorCode,
  type MeshErrorOptions,
} from "./errors.js";
export {
  Header,
  type HeaderName,
  headerText,
  MAX_ATTEMPT,
  MAX_TEXT_HEADER,
  parseAttempt,
  parseDeadline,
} from "./headers.js";
export { assertName, assertPrefix, isValidName, MAX_NAME_LENGTH } from "./names.js";
export {
  DEFAULT_WEIGHT,
  type DownMessage,
  type HeartbeatMessage,
  type InstanceRecord,
  InstanceStatus,
  PresenceLimits,
  type PresenceMessage,
  parsePresenceKey,
  parsePresenceMessage,
  presenceBucket,
  presenceKey,
  registryBucket,
  type UpMessage,
  type Validation,
  validateInstanceRecord,
} from "./presence.js";
export { HeaderBlock, MSGPACK_REPLY_HEADER, rawHeaderBlock, sameBytes } from "./raw-headers.js";
export {
  DEFAULT_PREFIX,
  lastToken,
  type ParsedSubject,
  parseSubject,
  QUEUE_GROUP,
  type Subjects,
  subjects,
} from "./subjects.js";
export { DEFAULT_AUDIENCE, KeyAlgorithm, TokenAlgorithm } from "./tokens/algorithms.js";
export { type IssueTokenOptions, issueToken } from "./tokens/issue.js";
export {
  JWKS_KEY,
  type JwksSource,
  type KeySource,
  type KeySourceOptions,
  startKeySource,
} from "./tokens/key-source.js";
export {
  assertJwks,
  type GenerateKeyPairOptions,
  generateKeyPair,
  type JsonWebKeySet,
  type MeshKeyPair,
} from "./tokens/keys.js";
export { parseScope, scopeAllows, scopeAllowsAnnounce } from "./tokens/scope.js";
export {
  checkTokenGateOptions,
  startTokenGate,
  type TokenGate,
  type TokenGateContext,
  type TokenGateOptions,
} from "./tokens/token-gate.js";
export { type TokenProvider, type TokenSource, tokenProvider } from "./tokens/token-provider.js";
export {
  bearerToken,
  createVerifier,
  TokenRejection,
  type TokenVerifier,
  type TokenVerifierOptions,
  unauthenticated,
  type VerifiedToken,
} from "./tokens/verifier.js";
export { childTraceparent, parseTraceparent, type TraceParent } from "./trace-context.js";
