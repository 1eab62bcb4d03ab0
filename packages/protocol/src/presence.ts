import { codecs } from "./codec.js";
import { MeshError } from "./errors.js";
import { type EventMode, isEventMode, isValidEventPattern } from "./events/names.js";
import { isIntInRange } from "./integers.js";
import { assertName, assertPrefix, isValidName } from "./names.js";
import type { PresenceKeys } from "./presence-signature.js";
import { DEFAULT_PREFIX, subjects } from "./subjects.js";

/**
 * Status of an instance. Only `ready` instances are chosen by presence strategies: `draining`
 * ones are stopping, `saturated` ones have every concurrency slot (or their in-flight byte
 * budget) taken, `unready` ones cannot serve yet (their key set has not loaded).
 */
export const InstanceStatus = {
  ready: "ready",
  draining: "draining",
  saturated: "saturated",
  unready: "unready",
} as const;
export type InstanceStatus = (typeof InstanceStatus)[keyof typeof InstanceStatus];

/** The record an agent announces and the registry mirrors into KV. */
export interface InstanceRecord {
  v: 1;
  /** Unique per process start (a NUID). */
  id: string;
  service: string;
  version: string;
  /** 0–10000; 0 takes no new traffic from weighted strategies. */
  weight: number;
  status: InstanceStatus;
  methods: string[];
  /** `P.inst.<service>.<id>` */
  subject: string;
  host: string;
  pid: number;
  zone?: string;
  metadata: Record<string, string>;
  /** Unix epoch milliseconds. */
  startedAt: number;
  /** The event patterns the instance handles, with their delivery modes. */
  events?: EventSubscription[];
}

/** One event subscription of an instance, as its record lists it. */
export interface EventSubscription {
  pattern: string;
  mode: EventMode;
}

/**
 * What every presence message may carry besides its kind's fields: `secret`, a random string
 * the agent picks once per process start and sends in all of its `up`, `hb` and `down`
 * messages. Registries bind an instance to it (with the announcing token's identity) and refuse
 * messages for that instance with another one, so an agent sharing the service's token cannot
 * send `down` for a sibling. It travels only on presence subjects, never into the bucket.
 */
interface PresenceProof {
  secret?: string;
}

/** `{"kind":"up"}`: on start, on any change of the record, and on `P.presence.sync`. */
export interface UpMessage extends PresenceProof {
  kind: "up";
  instance: InstanceRecord;
}

/** `{"kind":"hb"}`: every heartbeat. */
export interface HeartbeatMessage extends PresenceProof {
  kind: "hb";
  service: string;
  id: string;
  seq: number;
  inflight: number;
  /** The agent's concurrency limit, so `inflight` can be read as a share; absent from old agents. */
  limit?: number;
  status: InstanceStatus;
}

/** `{"kind":"down"}`: when the agent stops. */
export interface DownMessage extends PresenceProof {
  kind: "down";
  service: string;
  id: string;
  reason: string;
}

export type PresenceMessage = UpMessage | HeartbeatMessage | DownMessage;

/** Outcome of validating untrusted input: the clean value, or a `BAD_REQUEST` error. */
export type Validation<T> = { ok: true; value: T } | { ok: false; error: MeshError };

/** Bounds on what a presence record may hold. */
export const PresenceLimits = {
  maxWeight: 10_000,
  maxMethods: 256,
  /** Most event subscriptions in a record. */
  maxEvents: 64,
  maxMetadataEntries: 32,
  maxMetadataKey: 64,
  maxMetadataValue: 256,
  maxVersion: 64,
  maxHost: 255,
  maxReason: 256,
  /** Shortest and longest presence `secret` (base64url characters). */
  minSecret: 16,
  maxSecret: 128,
  /** Largest presence message, in bytes, accepted from the wire. */
  maxMessageBytes: 64 * 1024,
} as const;

/** Default weight of an instance. */
export const DEFAULT_WEIGHT = 100;

const PRINTABLE = /^[\x21-\x7e]+$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const METADATA_KEY = /^[A-Za-z0-9_.\-/]+$/;

class Invalid extends Error {}

function fail(field: string, why: string): never {
  throw new Invalid(`${field} ${why}`);
}

function obj(value: unknown, field: string): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value))
    fail(field, "must be an object");
  return value as Record<string, unknown>;
}

function name(value: unknown, field: string): string {
  if (!isValidName(value)) fail(field, "must be 1-64 characters of [A-Za-z0-9_-]");
  return value;
}

function int(value: unknown, field: string, min: number, max: number): number {
  if (!isIntInRange(value, min, max)) fail(field, `must be an integer from ${min} to ${max}`);
  return value;
}

function text(value: unknown, field: string, max: number, pattern?: RegExp): string {
  if (typeof value !== "string" || value.length > max || (pattern && !pattern.test(value))) {
    fail(field, `must be a string of at most ${max} characters${pattern ? " without spaces" : ""}`);
  }
  return value;
}

const STATUSES: readonly unknown[] = Object.values(InstanceStatus);

function status(value: unknown, field: string): InstanceStatus {
  if (!STATUSES.includes(value)) fail(field, `must be one of ${STATUSES.join(", ")}`);
  return value as InstanceStatus;
}

function events(value: unknown): EventSubscription[] {
  if (!Array.isArray(value) || value.length > PresenceLimits.maxEvents) {
    fail("instance.events", `must be an array of at most ${PresenceLimits.maxEvents} entries`);
  }
  return value.map((e, i) => {
    const entry = obj(e, `instance.events[${i}]`);
    if (!isValidEventPattern(entry.pattern)) {
      fail(`instance.events[${i}].pattern`, "must be an event pattern");
    }
    if (!isEventMode(entry.mode)) {
      fail(`instance.events[${i}].mode`, 'must be "durable", "group" or "broadcast"');
    }
    return { pattern: entry.pattern, mode: entry.mode };
  });
}

function record(value: unknown, prefix: string): InstanceRecord {
  const r = obj(value, "instance");
  if (r.v !== 1) fail("instance.v", "must be 1");
  const id = name(r.id, "instance.id");
  const service = name(r.service, "instance.service");
  const subject = subjects(prefix).instanceBase(service, id);
  if (r.subject !== subject) fail("instance.subject", `must be "${subject}"`);
  if (!Array.isArray(r.methods) || r.methods.length > PresenceLimits.maxMethods) {
    fail("instance.methods", `must be an array of at most ${PresenceLimits.maxMethods} names`);
  }
  const methods = r.methods.map((m, i) => name(m, `instance.methods[${i}]`));
  const meta = obj(r.metadata, "instance.metadata");
  const entries = Object.entries(meta);
  if (entries.length > PresenceLimits.maxMetadataEntries) {
    fail("instance.metadata", `must have at most ${PresenceLimits.maxMetadataEntries} entries`);
  }
  const pairs: [string, string][] = [];
  for (const [k, v] of entries) {
    text(k, "instance.metadata key", PresenceLimits.maxMetadataKey, METADATA_KEY);
    pairs.push([k, text(v, `instance.metadata.${k}`, PresenceLimits.maxMetadataValue)]);
  }
  // fromEntries defines own properties, so a key such as "__proto__" is kept as data, not a prototype.
  const metadata: Record<string, string> = Object.fromEntries(pairs);
  const out: InstanceRecord = {
    v: 1,
    id,
    service,
    version: text(r.version, "instance.version", PresenceLimits.maxVersion, PRINTABLE),
    weight: int(r.weight, "instance.weight", 0, PresenceLimits.maxWeight),
    status: status(r.status, "instance.status"),
    methods,
    subject,
    host: text(r.host, "instance.host", PresenceLimits.maxHost),
    pid: int(r.pid, "instance.pid", 0, 2 ** 31),
    metadata,
    startedAt: int(r.startedAt, "instance.startedAt", 0, Number.MAX_SAFE_INTEGER),
  };
  if (r.zone !== undefined) out.zone = name(r.zone, "instance.zone");
  if (r.events !== undefined) out.events = events(r.events);
  return out;
}

function secret(value: unknown): PresenceProof {
  if (value === undefined) return {};
  const { minSecret, maxSecret } = PresenceLimits;
  if (
    typeof value !== "string" ||
    value.length < minSecret ||
    value.length > maxSecret ||
    !BASE64URL.test(value)
  ) {
    fail("secret", `must be ${minSecret}-${maxSecret} characters of [A-Za-z0-9_-]`);
  }
  return { secret: value };
}

function message(value: unknown, prefix: string): PresenceMessage {
  const m = obj(value, "message");
  switch (m.kind) {
    case "up":
      return { kind: "up", instance: record(m.instance, prefix), ...secret(m.secret) };
    case "hb":
      return {
        kind: "hb",
        service: name(m.service, "service"),
        id: name(m.id, "id"),
        seq: int(m.seq, "seq", 0, Number.MAX_SAFE_INTEGER),
        inflight: int(m.inflight, "inflight", 0, Number.MAX_SAFE_INTEGER),
        ...(m.limit === undefined
          ? {}
          : { limit: int(m.limit, "limit", 1, Number.MAX_SAFE_INTEGER) }),
        status: status(m.status, "status"),
        ...secret(m.secret),
      };
    case "down":
      return {
        kind: "down",
        service: name(m.service, "service"),
        id: name(m.id, "id"),
        reason: text(m.reason, "reason", PresenceLimits.maxReason),
        ...secret(m.secret),
      };
    default:
      return fail("kind", 'must be "up", "hb" or "down"');
  }
}

function validate<T>(run: () => T): Validation<T> {
  try {
    return { ok: true, value: run() };
  } catch (err) {
    if (err instanceof Invalid) {
      return { ok: false, error: new MeshError("BAD_REQUEST", `invalid presence: ${err.message}`) };
    }
    throw err;
  }
}

/**
 * Validates an untrusted instance record (from KV or the wire) for the mesh with `prefix`.
 * Returns a clean copy holding only the contract's fields, or a `BAD_REQUEST` error; never throws
 * on bad input (a bad `prefix` is the caller's `TypeError`).
 */
export function validateInstanceRecord(
  value: unknown,
  prefix: string = DEFAULT_PREFIX,
): Validation<InstanceRecord> {
  return validate(() => record(value, prefix));
}

/**
 * Decodes and validates a presence message (JSON bytes or an already parsed value). Oversized,
 * non-JSON or invalid input gives a `BAD_REQUEST` error; never throws.
 */
export function parsePresenceMessage(
  data: Uint8Array | unknown,
  prefix: string = DEFAULT_PREFIX,
): Validation<PresenceMessage> {
  let value = data;
  if (data instanceof Uint8Array) {
    if (data.length > PresenceLimits.maxMessageBytes) {
      return { ok: false, error: new MeshError("BAD_REQUEST", "presence message is too large") };
    }
    try {
      value = codecs.json.decode(data);
    } catch {
      return { ok: false, error: new MeshError("BAD_REQUEST", "presence message is not JSON") };
    }
  }
  return validate(() => message(value, prefix));
}

/** Options of {@link parsePresenceEntry}. */
export interface PresenceEntryOptions {
  /**
   * Largest value accepted, in bytes (a reader's quota; at most
   * {@link PresenceLimits.maxMessageBytes}, which also applies without it).
   */
  maxBytes?: number;
  /**
   * Keys of the registries: the value must carry a valid `sig` by one of them (see
   * {@link PresenceKeys}), or the entry is refused with `UNAUTHENTICATED`.
   */
  keys?: PresenceKeys;
}

/**
 * Decodes and checks an entry of the presence bucket, whoever wrote it: the key must be
 * `<service>.<id>`, the value JSON of at most {@link PresenceLimits.maxMessageBytes} holding a
 * valid record for `prefix`, and that record the one of the instance its key names; with
 * `keys`, signed by a registry. Returns the clean record, or a `BAD_REQUEST` error (an
 * `UNAUTHENTICATED` one for a missing or wrong signature); never throws. Every reader of the
 * bucket uses this.
 */
export function parsePresenceEntry(
  key: string,
  value: Uint8Array,
  prefix: string = DEFAULT_PREFIX,
  options: PresenceEntryOptions = {},
): Validation<InstanceRecord> {
  const parts = parsePresenceKey(key);
  if (parts === undefined) return invalidEntry("the key is not <service>.<id>");
  const maxBytes = Math.min(options.maxBytes ?? Infinity, PresenceLimits.maxMessageBytes);
  if (value.length > maxBytes) {
    return invalidEntry(`the value is larger than ${maxBytes} bytes`, { reason: "too-large" });
  }
  let json: unknown;
  try {
    json = codecs.json.decode(value);
  } catch {
    return invalidEntry("the value is not UTF-8 JSON");
  }
  const checked = validateInstanceRecord(json, prefix);
  if (!checked.ok) return checked;
  const { service, id } = checked.value;
  if (service !== parts.service || id !== parts.id) {
    return invalidEntry(`the record is the one of ${service}.${id}`);
  }
  if (options.keys !== undefined) {
    const refused = options.keys.check(key, checked.value, (json as { sig?: unknown }).sig);
    if (refused !== undefined) return { ok: false, error: refused };
  }
  return checked;
}

function invalidEntry(why: string, data?: { reason: string }): Validation<never> {
  return {
    ok: false,
    error: new MeshError("BAD_REQUEST", `invalid presence entry: ${why}`, data && { data }),
  };
}

/** KV key of an instance in the presence bucket: `<service>.<id>`. */
export function presenceKey(service: string, id: string): string {
  assertName(service, "service");
  assertName(id, "instance id");
  return `${service}.${id}`;
}

/** Takes a presence key apart, or `undefined` when it is not one. */
export function parsePresenceKey(key: string): { service: string; id: string } | undefined {
  const dot = key.indexOf(".");
  const service = key.slice(0, dot);
  const id = key.slice(dot + 1);
  return dot > 0 && isValidName(service) && isValidName(id) ? { service, id } : undefined;
}

// KV bucket and stream names cannot contain dots, so a dotted prefix maps them to underscores.
/** The base of every bucket and stream name of a mesh: the prefix with `.` → `_`. */
export function bucketBase(prefix: string): string {
  assertPrefix(prefix);
  return prefix.replaceAll(".", "_");
}

/** Name of the presence bucket: `<P>_presence`. */
export function presenceBucket(prefix: string = DEFAULT_PREFIX): string {
  return `${bucketBase(prefix)}_presence`;
}

/** Name of the registry bucket (leader lease, JWKS): `<P>_registry`. */
export function registryBucket(prefix: string = DEFAULT_PREFIX): string {
  return `${bucketBase(prefix)}_registry`;
}
