import { createHash } from "node:crypto";

/** Most tokens in an event name or pattern. */
export const MAX_EVENT_TOKENS = 8;
/** Longest event name or pattern, in characters. */
export const MAX_EVENT_LENGTH = 128;

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;
const NAME = /^[A-Za-z0-9_-]{1,64}(?:\.[A-Za-z0-9_-]{1,64}){0,7}$/;

/** The delivery modes of an event subscription; see the Events section of the design contract. */
export const EventMode = {
  /** At least once per service, stored, retried, dead-lettered: a JetStream durable consumer. */
  durable: "durable",
  /** At most once per service, live instances only: a core NATS queue group. */
  group: "group",
  /** At most once per instance, live instances only: a plain core NATS subscription. */
  broadcast: "broadcast",
} as const;
export type EventMode = (typeof EventMode)[keyof typeof EventMode];

/** True for a mode of {@link EventMode}. */
export function isEventMode(value: unknown): value is EventMode {
  return value === "durable" || value === "group" || value === "broadcast";
}

function tokens(value: unknown): string[] | undefined {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_EVENT_LENGTH) {
    return undefined;
  }
  const t = value.split(".");
  return t.length <= MAX_EVENT_TOKENS ? t : undefined;
}

/**
 * True when `value` is an event name: 1–8 dot-separated tokens of `[A-Za-z0-9_-]`, at most 128
 * characters, no wildcards (`order.created`).
 */
export function isValidEventName(value: unknown): value is string {
  // One expression instead of a split: names are checked on every emit and every delivery.
  return typeof value === "string" && value.length <= MAX_EVENT_LENGTH && NAME.test(value);
}

/**
 * True when `value` is an event pattern a subscriber may use: an event name in which any token
 * may be `*` and the last may be `>`, as NATS subjects allow (`order.*`, `order.>`).
 */
export function isValidEventPattern(value: unknown): value is string {
  const t = tokens(value);
  if (t === undefined) return false;
  return t.every((s, i) => s === "*" || (s === ">" && i === t.length - 1) || TOKEN.test(s));
}

function describe(value: unknown): string {
  if (typeof value !== "string") return typeof value;
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/** Throws a `TypeError` unless `value` is an event name (see {@link isValidEventName}). */
export function assertEventName(value: unknown, what = "event"): asserts value is string {
  if (!isValidEventName(value)) {
    throw new TypeError(
      `${what} must be 1-${MAX_EVENT_TOKENS} dot-separated tokens of [A-Za-z0-9_-], at most ` +
        `${MAX_EVENT_LENGTH} characters (e.g. "order.created"), got ${describe(value)}`,
    );
  }
}

/** Throws a `TypeError` unless `value` is an event pattern (see {@link isValidEventPattern}). */
export function assertEventPattern(
  value: unknown,
  what = "event pattern",
): asserts value is string {
  if (!isValidEventPattern(value)) {
    throw new TypeError(
      `${what} must be 1-${MAX_EVENT_TOKENS} dot-separated tokens of [A-Za-z0-9_-], "*" or a ` +
        `final ">", at most ${MAX_EVENT_LENGTH} characters (e.g. "order.*"), got ${describe(value)}`,
    );
  }
}

/**
 * True when the event `name` matches `pattern` by NATS subject rules: `*` is one token, a final
 * `>` one or more.
 */
export function eventMatches(pattern: string, name: string): boolean {
  const p = pattern.split(".");
  const n = name.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return n.length > i;
    if (i >= n.length || (p[i] !== "*" && p[i] !== n[i])) return false;
  }
  return p.length === n.length;
}

/**
 * The part of a durable consumer's name that stands for a pattern: readable (`.` → `_`,
 * `*` → `any`, `>` → `all`) and made unique by 8 hex digits of the pattern's SHA-256, since the
 * readable part alone can collide (`a.b` and `a_b`).
 */
export function patternId(pattern: string): string {
  assertEventPattern(pattern);
  const readable = pattern
    .split(".")
    .map((t) => (t === "*" ? "any" : t === ">" ? "all" : t))
    .join("_");
  const hash = createHash("sha256").update(pattern).digest("hex").slice(0, 8);
  return `${readable}-${hash}`;
}
