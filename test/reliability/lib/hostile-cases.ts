import { decode as referenceDecode, encode as referenceEncode } from "@msgpack/msgpack";
import fc from "fast-check";

// Generators of hostile input for scenario 6 (docs/reliability.md), each with the answer the
// contract (docs/protocol.md, docs/security.md) requires. The oracles restate the contract's
// rules, or use an independent decoder (@msgpack/msgpack, JSON.parse), never the code under test.

/** The answer a request must get: a `Mesh-Error` code, or "OK"; with "OK", maybe the value. */
export interface Expected {
  codes: readonly string[];
  value?: { v: unknown };
}

/** A request payload and what the agent's `echo` must answer. */
export interface PayloadCase {
  label: string;
  contentType: string;
  data: Uint8Array;
  expected: Expected;
}

const te = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const REFUSED = ["BAD_REQUEST", "PAYLOAD_TOO_LARGE"] as const;
const MSGPACK = "application/msgpack";
const JSON_TYPE = "application/json";
/** The agent's default decode limits (`maxElements`, `maxDepth`). */
export const LIMITS = { maxElements: 100_000, maxDepth: 64 } as const;

/** JSON.parse semantics for a value: what a JSON round trip gives back. */
const viaJson = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

const jsonValue = fc.jsonValue({ maxDepth: 6 });

/** What an independent decoder makes of `data` as JSON: the value, or that it must be refused. */
function jsonOracle(data: Uint8Array): Expected {
  if (data.length === 0) return { codes: ["OK"], value: { v: undefined } };
  try {
    return { codes: ["OK"], value: { v: JSON.parse(strictUtf8.decode(data)) } };
  } catch {
    return { codes: ["BAD_REQUEST"] };
  }
}

/**
 * Bytes as MessagePack. When an independent decoder refuses them, the agent must too; when it
 * accepts them, the agent may still refuse what natsmesh does not decode (extension types but
 * the timestamp, invalid UTF-8 in strings, non-string map keys), but must never fail otherwise.
 */
function msgpackOracle(data: Uint8Array): Expected {
  if (data.length === 0) return { codes: ["OK"], value: { v: undefined } };
  try {
    referenceDecode(data);
    return { codes: ["OK", ...REFUSED] };
  } catch {
    return { codes: REFUSED };
  }
}

/** Payload cases: values that must come back, bytes that must be judged, bombs that must not cost. */
export function payloadCases(): fc.Arbitrary<PayloadCase> {
  const echoMsgpack = jsonValue.map((v): PayloadCase => {
    const data = referenceEncode(v);
    // What was sent, as an independent decoder reads it (the encoder writes -0 as 0).
    return {
      label: "msgpack value",
      contentType: MSGPACK,
      data,
      expected: { codes: ["OK"], value: { v: referenceDecode(data) } },
    };
  });
  const echoJson = jsonValue.map(
    (v): PayloadCase => ({
      label: "json value",
      contentType: JSON_TYPE,
      data: te.encode(JSON.stringify(v)),
      expected: { codes: ["OK"], value: { v: viaJson(v) } },
    }),
  );
  // Valid encodings cut short or with a byte changed, and plain random bytes.
  const damaged = fc
    .tuple(jsonValue, fc.nat(), fc.nat(255), fc.boolean())
    .map(([v, at, byte, cut]) => {
      const data = new Uint8Array(referenceEncode(v));
      if (data.length === 0) return data;
      const i = at % data.length;
      if (cut) return data.subarray(0, i);
      data[i] = byte;
      return data;
    });
  const bytes = fc.oneof(damaged, fc.uint8Array({ maxLength: 96 }));
  const randomMsgpack = bytes.map(
    (data): PayloadCase => ({
      label: "msgpack bytes",
      contentType: MSGPACK,
      data,
      expected: msgpackOracle(data),
    }),
  );
  const text = fc.oneof(
    fc.uint8Array({ maxLength: 96 }),
    fc.string({ unit: "binary", maxLength: 64 }).map((s) => te.encode(s)),
    jsonValue.chain((v) => {
      const json = JSON.stringify(v);
      return fc.nat(json.length).map((i) => te.encode(json.slice(0, i)));
    }),
  );
  const randomJson = text.map(
    (data): PayloadCase => ({
      label: "json bytes",
      contentType: JSON_TYPE,
      data,
      expected: jsonOracle(data),
    }),
  );
  // Defect 3: little bytes, many values or deep nesting. Refused before anything is built.
  const wide = fc
    .tuple(fc.integer({ min: LIMITS.maxElements + 1, max: 250_000 }), fc.boolean())
    .map(([n, asJson]): PayloadCase => {
      if (asJson) {
        return {
          label: "json wide",
          contentType: JSON_TYPE,
          data: te.encode(`[${"{},".repeat(n - 1)}{}]`),
          expected: { codes: ["PAYLOAD_TOO_LARGE"] },
        };
      }
      const data = new Uint8Array(5 + n).fill(0x80); // array32 of n empty maps
      data.set([0xdd, (n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
      return {
        label: "msgpack wide",
        contentType: MSGPACK,
        data,
        expected: { codes: ["PAYLOAD_TOO_LARGE"] },
      };
    });
  const deep = fc
    .tuple(fc.integer({ min: LIMITS.maxDepth + 1, max: 5000 }), fc.boolean())
    .map(([depth, asJson]): PayloadCase => {
      const data = asJson
        ? te.encode(`${"[".repeat(depth)}${"]".repeat(depth)}`)
        : new Uint8Array(depth + 1).fill(0x91).fill(0xc0, depth); // fixarray(1) × depth, then nil
      return {
        label: asJson ? "json deep" : "msgpack deep",
        contentType: asJson ? JSON_TYPE : MSGPACK,
        data,
        expected: { codes: ["BAD_REQUEST"] },
      };
    });
  return fc.oneof(
    { arbitrary: echoMsgpack, weight: 3 },
    { arbitrary: echoJson, weight: 3 },
    { arbitrary: randomMsgpack, weight: 3 },
    { arbitrary: randomJson, weight: 3 },
    { arbitrary: wide, weight: 1 },
    { arbitrary: deep, weight: 1 },
  );
}

/** A header value as sent: absent, or text (nats.js refuses CR and LF in values). */
type HeaderValue = string | undefined;

/** A header value relative to now, resolved when the request is sent. */
export type DeadlineValue = HeaderValue | { inMs: number };

/** Request headers (besides a valid token) and the answer they must get. */
export interface HeaderCase {
  contentType: HeaderValue;
  deadline: DeadlineValue;
  attempt: HeaderValue;
  extra: [string, string][];
}

const headerText = fc.string({ maxLength: 40 }).filter((s) => !/[\r\n]/.test(s));
const unicodeText = fc.string({ unit: "grapheme", maxLength: 20 }).filter((s) => !/[\r\n]/.test(s));

export function headerCases(): fc.Arbitrary<HeaderCase> {
  const contentType = fc.oneof(
    fc.constant(undefined),
    fc.constantFrom(
      "",
      "application/json",
      "application/msgpack",
      "application/x-msgpack",
      "APPLICATION/JSON",
      "application/json; charset=utf-8",
      "text/plain",
      "application/xml",
      "application/msgpackx",
      "application/json5",
      "json",
      ";",
    ),
    fc
      .tuple(fc.constantFrom("application/json", "Application/MsgPack"), headerText)
      .map(([base, param]) => `${base};${param}`),
    headerText,
  );
  const deadline = fc.oneof(
    fc.constant(undefined),
    fc.integer({ min: 3000, max: 600_000 }).map((inMs) => ({ inMs })),
    fc.integer({ min: -1e9, max: -1000 }).map((inMs) => ({ inMs })),
    fc.constantFrom(
      "",
      "0",
      "-5",
      "1e12",
      "0x10",
      "9007199254740991",
      "9999999999999999",
      "99999999999999999",
      " 1",
    ),
    headerText,
  );
  const attempt = fc.oneof(
    fc.constant(undefined),
    fc.integer({ min: 1, max: 1000 }).map(String),
    fc.integer({ min: 1001, max: 1e9 }).map(String),
    fc.constantFrom("", "0", "-1", "1.5", "01", " 2 "),
    headerText,
  );
  const significant = /^(content-type|mesh-deadline|mesh-attempt|authorization)$/i;
  const extraName = fc.oneof(
    fc.constantFrom(
      "traceparent",
      "tracestate",
      "Mesh-Idempotency-Key",
      "Nats-Msg-Id",
      "Mesh-Error",
    ),
    fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,24}$/).filter((n) => !significant.test(n)),
  );
  const extra = fc.array(fc.tuple(extraName, fc.oneof(headerText, unicodeText)), {
    maxLength: 8,
  });
  return fc.record({ contentType, deadline, attempt, extra });
}

/** The value a relative deadline stands for now. */
export function deadlineText(d: DeadlineValue): HeaderValue {
  return typeof d === "object" ? String(Date.now() + d.inMs) : d;
}

/** Which codec a Content-Type selects (the contract: absent or empty is JSON), or undefined. */
export function codecOf(contentType: HeaderValue): "json" | "msgpack" | undefined {
  const v = contentType?.trim() ?? "";
  if (v === "") return "json";
  const base = v.split(";", 1)[0]!.trim().toLowerCase();
  if (base === MSGPACK || base === "application/x-msgpack") return "msgpack";
  if (base === JSON_TYPE) return "json";
  return undefined;
}

const DIGITS = /^[0-9]{1,16}$/;

/**
 * The contract for a request's headers, checked in the agent's order: an unknown Content-Type,
 * then a malformed Mesh-Deadline or Mesh-Attempt (`BAD_REQUEST`), then a deadline already past
 * (`DEADLINE_EXCEEDED`). Header values are read trimmed. Unknown headers change nothing.
 */
export function expectedForHeaders(c: HeaderCase, deadline: HeaderValue): string {
  if (codecOf(c.contentType) === undefined) return "BAD_REQUEST";
  const d = deadline?.trim() ?? "";
  const a = c.attempt?.trim() ?? "";
  const deadlineMs = d === "" ? undefined : DIGITS.test(d) ? Number(d) : Number.NaN;
  if (
    (deadlineMs !== undefined && !(deadlineMs > 0 && Number.isSafeInteger(deadlineMs))) ||
    (a !== "" && !(DIGITS.test(a) && Number(a) >= 1 && Number(a) <= 1000))
  ) {
    return "BAD_REQUEST";
  }
  if (deadlineMs !== undefined && deadlineMs <= Date.now()) return "DEADLINE_EXCEEDED";
  return "OK";
}

/**
 * Raw header blocks as a hostile client writes them: the status line, then lines of any bytes
 * but CR and LF (a valid Authorization line somewhere among them, or not), then the blank line.
 */
export function rawHeaderBlocks(authorization: string): fc.Arbitrary<Uint8Array> {
  const line = fc.oneof(
    fc.uint8Array({ maxLength: 80 }).map((b) => b.filter((x) => x !== 13 && x !== 10)),
    fc
      .tuple(
        fc.constantFrom("Mesh-Deadline", "Mesh-Attempt", "Content-Type", "content-type", "X"),
        fc.uint8Array({ maxLength: 40 }).map((b) => b.filter((x) => x !== 13 && x !== 10)),
      )
      .map(([name, value]) => new Uint8Array([...te.encode(`${name}:`), ...value])),
  );
  return fc
    .tuple(fc.array(line, { maxLength: 12 }), fc.nat(12), fc.boolean())
    .map(([lines, at, withAuth]) => {
      const all = [...lines];
      if (withAuth)
        all.splice(at % (all.length + 1), 0, te.encode(`Authorization: ${authorization}`));
      const parts = [te.encode("NATS/1.0"), ...all, new Uint8Array(0), new Uint8Array(0)];
      const size = parts.reduce((n, p) => n + p.length + 2, 0) - 2;
      const out = new Uint8Array(size);
      let pos = 0;
      parts.forEach((p, i) => {
        out.set(p, pos);
        pos += p.length;
        if (i < parts.length - 1) {
          out.set([13, 10], pos);
          pos += 2;
        }
      });
      return out;
    });
}

/** Method names the agent does not have: valid names, so the answer is `NOT_FOUND`. */
export function unknownMethods(known: ReadonlySet<string>): fc.Arbitrary<string> {
  return fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/).filter((m) => !known.has(m));
}

/**
 * The contract for reply subjects: an agent answers only inbox subjects, `_INBOX.` followed by
 * non-empty tokens of printable ASCII without wildcards, at most 256 characters.
 */
export function isInboxSubject(reply: string): boolean {
  if (reply.length > 256 || !reply.startsWith("_INBOX.")) return false;
  return reply
    .slice("_INBOX.".length)
    .split(".")
    .every((t) => t.length > 0 && /^[\x21-\x7e]+$/.test(t) && !/[*>]/.test(t));
}

/** Reply subjects a caller may name: the dangerous ones of defect 1, inboxes, and anything. */
export function replySubjects(dangerous: readonly string[]): fc.Arbitrary<string> {
  const token = fc.stringMatching(/^[!-~]{0,12}$/).filter((t) => !t.includes("."));
  return fc.oneof(
    fc.constantFrom(...dangerous),
    fc.constantFrom("_INBOX", "_INBOX.", "_INBOX..x", "_INBOX.x.", "_INBOXx.y", "_inbox.x"),
    fc.array(token, { minLength: 1, maxLength: 6 }).map((ts) => `_INBOX.${ts.join(".")}`),
    fc.stringMatching(/^[!-~]{1,300}$/),
  );
}
