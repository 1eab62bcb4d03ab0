import {
  assertEventName,
  assertEventPattern,
  isValidEventName,
  isValidEventPattern,
} from "./events/names.js";
import { assertName, assertPrefix, isValidName } from "./names.js";

/** Default subject prefix; several meshes can share one NATS account with different prefixes. */
export const DEFAULT_PREFIX = "mesh";

/** Queue group every agent of a service joins on its balanced subjects. */
export const QUEUE_GROUP = "q";

/** Builds the subjects of one mesh (one prefix). Every builder validates its names. */
export interface Subjects {
  readonly prefix: string;
  /** `P.svc.<service>.<method>`: balanced call through the queue group. */
  service(service: string, method: string): string;
  /** `P.svc.<service>.*`: what an agent subscribes to in the queue group. */
  serviceWildcard(service: string): string;
  /** `P.inst.<service>.<id>.<method>`: direct call to one instance. */
  instance(service: string, id: string, method: string): string;
  /** `P.inst.<service>.<id>`: the instance's `subject` in its record. */
  instanceBase(service: string, id: string): string;
  /** `P.inst.<service>.<id>.*`: what an agent subscribes to for direct calls. */
  instanceWildcard(service: string, id: string): string;
  /** `P.presence.<service>.<id>`: an agent's presence messages. */
  presence(service: string, id: string): string;
  /** `P.presence.*.*`: every presence message (what registries subscribe to). */
  presenceWildcard(): string;
  /** `P.presence.sync`: "announce yourselves again". */
  presenceSync(): string;
  /** `P.evt.<event>`: an event. */
  event(name: string): string;
  /** `P.evt.<pattern>`: what a subscriber of `pattern` listens to. */
  eventPattern(pattern: string): string;
  /** `P.evt.>`: every event; the subjects of the `<P>_events` stream. */
  events(): string;
  /** `P.dlq.<service>.<event>`: a dead letter of `service`. */
  deadLetter(service: string, name: string): string;
  /** `P.dlq.<service>.>`, or `P.dlq.>` without a service: the dead letters of one or all services. */
  deadLetters(service?: string): string;
}

/** Returns the subject builders for `prefix` (default `mesh`); throws `TypeError` on a bad prefix. */
export function subjects(prefix: string = DEFAULT_PREFIX): Subjects {
  assertPrefix(prefix);
  return {
    prefix,
    service(service, method) {
      assertName(service, "service");
      assertName(method, "method");
      return `${prefix}.svc.${service}.${method}`;
    },
    serviceWildcard(service) {
      assertName(service, "service");
      return `${prefix}.svc.${service}.*`;
    },
    instance(service, id, method) {
      assertName(service, "service");
      assertName(id, "instance id");
      assertName(method, "method");
      return `${prefix}.inst.${service}.${id}.${method}`;
    },
    instanceBase(service, id) {
      assertName(service, "service");
      assertName(id, "instance id");
      return `${prefix}.inst.${service}.${id}`;
    },
    instanceWildcard(service, id) {
      assertName(service, "service");
      assertName(id, "instance id");
      return `${prefix}.inst.${service}.${id}.*`;
    },
    presence(service, id) {
      assertName(service, "service");
      assertName(id, "instance id");
      return `${prefix}.presence.${service}.${id}`;
    },
    presenceWildcard() {
      return `${prefix}.presence.*.*`;
    },
    presenceSync() {
      return `${prefix}.presence.sync`;
    },
    event(name) {
      assertEventName(name);
      return `${prefix}.evt.${name}`;
    },
    eventPattern(pattern) {
      assertEventPattern(pattern);
      return `${prefix}.evt.${pattern}`;
    },
    events() {
      return `${prefix}.evt.>`;
    },
    deadLetter(service, name) {
      assertName(service, "service");
      assertEventName(name);
      return `${prefix}.dlq.${service}.${name}`;
    },
    deadLetters(service) {
      if (service === undefined) return `${prefix}.dlq.>`;
      assertName(service, "service");
      return `${prefix}.dlq.${service}.>`;
    },
  };
}

/** A mesh subject taken apart; see {@link parseSubject}. */
export type ParsedSubject =
  | { kind: "svc"; service: string; method: string }
  | { kind: "inst"; service: string; id: string; method: string }
  | { kind: "presence"; service: string; id: string }
  | { kind: "sync" };

/**
 * Parses a subject of the mesh with `prefix`, or returns `undefined` when it is not one
 * (other prefix, unknown kind, wrong token count or an invalid name). Never throws.
 */
export function parseSubject(
  subject: string,
  prefix: string = DEFAULT_PREFIX,
): ParsedSubject | undefined {
  if (typeof subject !== "string" || !subject.startsWith(`${prefix}.`)) return undefined;
  const t = subject.slice(prefix.length + 1).split(".");
  switch (t[0]) {
    case "svc":
      return t.length === 3 && valid(t, 1, 2)
        ? { kind: "svc", service: t[1]!, method: t[2]! }
        : undefined;
    case "inst":
      return t.length === 4 && valid(t, 1, 3)
        ? { kind: "inst", service: t[1]!, id: t[2]!, method: t[3]! }
        : undefined;
    case "presence":
      if (t.length === 2 && t[1] === "sync") return { kind: "sync" };
      return t.length === 3 && valid(t, 1, 2)
        ? { kind: "presence", service: t[1]!, id: t[2]! }
        : undefined;
    default:
      return undefined;
  }
}

/**
 * The event name of a subject `P.evt.<event>`, or `undefined` when the subject is not one (other
 * prefix, or a name that is not valid). Never throws.
 */
export function parseEventSubject(
  subject: string,
  prefix: string = DEFAULT_PREFIX,
): string | undefined {
  return eventTail(subject, prefix, isValidEventName);
}

/**
 * The pattern of a subscriber's subject `P.evt.<pattern>` (what {@link Subjects.eventPattern}
 * builds, e.g. a consumer's filter), or `undefined` when the subject is not one. Never throws.
 */
export function parseEventPatternSubject(
  subject: string,
  prefix: string = DEFAULT_PREFIX,
): string | undefined {
  return eventTail(subject, prefix, isValidEventPattern);
}

/** What follows `P.evt.` in `subject` when it starts so and `valid` accepts it. */
function eventTail(
  subject: string,
  prefix: string,
  valid: (tail: string) => boolean,
): string | undefined {
  const head = `${prefix}.evt.`;
  if (typeof subject !== "string" || !subject.startsWith(head)) return undefined;
  const tail = subject.slice(head.length);
  return valid(tail) ? tail : undefined;
}

/**
 * A dead letter's subject `P.dlq.<service>.<event>` taken apart, or `undefined` when it is not
 * one. Never throws.
 */
export function parseDeadLetterSubject(
  subject: string,
  prefix: string = DEFAULT_PREFIX,
): { service: string; event: string } | undefined {
  const head = `${prefix}.dlq.`;
  if (typeof subject !== "string" || !subject.startsWith(head)) return undefined;
  const rest = subject.slice(head.length);
  const dot = rest.indexOf(".");
  const service = rest.slice(0, dot);
  const event = rest.slice(dot + 1);
  return dot > 0 && isValidName(service) && isValidEventName(event)
    ? { service, event }
    : undefined;
}

/** The last token of a subject: the method of `svc` and `inst` subjects. */
export function lastToken(subject: string): string {
  return subject.slice(subject.lastIndexOf(".") + 1);
}

function valid(tokens: string[], from: number, to: number): boolean {
  for (let i = from; i <= to; i++) if (!isValidName(tokens[i])) return false;
  return true;
}
