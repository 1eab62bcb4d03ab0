import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import {
  Header,
  MeshError,
  type PresenceMessage,
  parsePresenceMessage,
  presenceKey,
  type Subjects,
  scopeAllowsAnnounce,
  type VerifiedToken,
} from "@natsmesh/protocol";
import {
  HeaderBlock,
  rawHeaderBlock,
  ThrottledLog,
  type TokenGate,
} from "@natsmesh/protocol/internal";
import type { Logger } from "pino";
import { bindingOf, sameBinding } from "./binding.js";
import type { InstanceTable } from "./instance-table.js";
import type { Counters } from "./stats.js";

/**
 * Bounds on presence messages waiting for a token's signature check, per instance subject and
 * in all: beyond them, messages are dropped unverified (and counted). A message whose token is
 * known (verified or refused before) never waits, so a flood of new tokens on one subject
 * cannot hold up the instance's real heartbeats, nor anyone else's.
 */
export const VERIFY_QUEUE = { perSubject: 8, total: 1024 } as const;

/** The `Authorization` value of a message, read from its raw header block: never throws. */
function authorizationOf(msg: Msg): string | undefined {
  const raw = rawHeaderBlock(msg);
  if (raw === undefined) return undefined;
  if (raw !== null) return new HeaderBlock(raw).get("authorization");
  try {
    return msg.headers?.get(Header.Authorization) || undefined;
  } catch {
    return undefined;
  }
}

/** What the tracker needs from the registry. */
export interface PresenceTrackerOptions {
  connection: NatsConnection;
  subjects: Subjects;
  table: InstanceTable;
  counters: Counters;
  log: Logger;
  /** An instance's record appeared, changed or went away: KV may need a write. */
  changed(key: string): void;
  /** A heartbeat came from an instance the table has no record of. */
  unknown(key: string): void;
  /** With auth: checks a message's `Authorization` value. */
  gate: TokenGate | undefined;
}

/**
 * Listens to `P.presence.*.*` and keeps the instance table current. Every message is untrusted:
 * one that does not validate, or whose subject names another instance than its body, is
 * dropped and counted. Nothing here throws into nats.js.
 */
export class PresenceTracker {
  readonly #o: PresenceTrackerOptions;
  readonly #throttled: ThrottledLog;
  #sub: Subscription | undefined;
  /** Per instance, how many of its messages wait for a signature check. */
  readonly #waiting = new Map<string, number>();
  #waitingTotal = 0;

  constructor(options: PresenceTrackerOptions) {
    this.#o = options;
    this.#throttled = new ThrottledLog(options.log);
  }

  start(): void {
    this.#sub = this.#o.connection.subscribe(this.#o.subjects.presenceWildcard(), {
      callback: (err, msg) => this.#onMessage(err, msg),
    });
  }

  stop(): void {
    try {
      this.#sub?.unsubscribe();
    } catch {
      // Already closed with the connection: nothing left to unsubscribe.
    }
  }

  #onMessage(err: Error | null, msg: Msg): void {
    if (err !== null) {
      this.#o.log.warn({ err }, "presence subscription error");
      return;
    }
    // Whatever a peer sends must not throw into nats.js: an exception in a subscription
    // callback ends the connection's read loop.
    try {
      this.#receive(msg);
    } catch (e) {
      this.#o.log.error({ err: e, subject: msg.subject }, "presence message handling failed");
    }
  }

  #receive(msg: Msg): void {
    const received = performance.now();
    const { counters, log } = this.#o;
    // The cheap checks first: nothing is verified for a message that is invalid anyway.
    const parsed = parsePresenceMessage(msg.data, this.#o.subjects.prefix);
    if (!parsed.ok) {
      counters.invalid++;
      log.debug(
        { subject: msg.subject, reason: parsed.error.message },
        "invalid presence message dropped",
      );
      return;
    }
    const m = parsed.value;
    const service = m.kind === "up" ? m.instance.service : m.service;
    const id = m.kind === "up" ? m.instance.id : m.id;
    const key = presenceKey(service, id);
    // The subject is what NATS permissions can restrict; a body claiming another instance
    // than its subject is a forgery or a bug, never an announcement.
    if (msg.subject !== this.#o.subjects.presence(service, id)) {
      counters.invalid++;
      log.debug(
        { subject: msg.subject, service, id },
        "presence message for another subject dropped",
      );
      return;
    }
    const gate = this.#o.gate;
    if (gate === undefined) {
      this.#apply(m, key, received, undefined);
      return;
    }
    const authorization = authorizationOf(msg);
    // A known good token costs a map lookup and never waits, whatever else is going on.
    const cached = gate.cached(authorization);
    if (cached !== undefined) {
      this.#authorized(m, key, received, cached);
      return;
    }
    const waiting = this.#waiting.get(key) ?? 0;
    if (waiting >= VERIFY_QUEUE.perSubject || this.#waitingTotal >= VERIFY_QUEUE.total) {
      // Flooded: anything else is dropped before it costs more than this.
      counters.dropped++;
      this.#throttled.warn(
        "dropped",
        { key, dropped: counters.dropped },
        "presence messages dropped unverified: too many new tokens waiting for a signature check",
      );
      return;
    }
    const known = gate.known(authorization);
    if (known !== undefined) {
      this.#authorized(m, key, received, known);
      return;
    }
    // Messages with one token share one verification and are applied in arrival order; those
    // with a known token go ahead at once rather than queue behind anyone's unverified ones.
    this.#waiting.set(key, waiting + 1);
    this.#waitingTotal++;
    void Promise.resolve(gate.check(authorization))
      .then((result) => this.#authorized(m, key, received, result))
      .catch((e: unknown) => log.error({ err: e, key }, "presence message handling failed"))
      .finally(() => {
        this.#waitingTotal--;
        const left = (this.#waiting.get(key) ?? 1) - 1;
        if (left === 0) this.#waiting.delete(key);
        else this.#waiting.set(key, left);
      });
  }

  #authorized(
    m: PresenceMessage,
    key: string,
    received: number,
    token: VerifiedToken | MeshError,
  ): void {
    const service = m.kind === "up" ? m.instance.service : m.service;
    // A token for one service can never announce another: the scope must name this one.
    if (token instanceof MeshError || !scopeAllowsAnnounce(token.scopes, service)) {
      this.#o.counters.unauthorized++;
      const refused = token instanceof MeshError;
      // Per instance and rate-limited: an agent with the wrong token must not look healthy, and
      // a peer inventing instances must not flood the log.
      this.#throttled.warnEach(
        "unauthorized",
        key,
        {
          key,
          kind: m.kind,
          code: refused ? token.code : "FORBIDDEN",
          reason: refused ? token.message : `scope lacks announce:${service}`,
          ...(refused ? {} : { sub: token.claims.sub }),
        },
        `presence message refused: the instance stays out of the presence bucket until its token holds announce:${service}`,
      );
      return;
    }
    this.#apply(m, key, received, token);
  }

  /**
   * Applies a valid, authorized presence message received at monotonic time `now`, if it comes
   * from whoever announced the instance: the same token identity and presence secret.
   */
  #apply(m: PresenceMessage, key: string, now: number, token: VerifiedToken | undefined): void {
    const { table, counters, log } = this.#o;
    const binding = bindingOf(m, token);
    const bound = table.binding(key, now);
    if (bound !== undefined && !sameBinding(bound, binding)) {
      counters.impostors++;
      this.#throttled.warn(
        "impostor",
        { key, kind: m.kind, impostors: counters.impostors },
        "presence message refused: another identity or secret announced this instance",
      );
      return;
    }
    switch (m.kind) {
      case "up": {
        counters.announcements++;
        const result = table.up(key, m.instance, now, binding);
        if (result === "same") return;
        if (result === "over-quota" || result === "too-large") {
          counters.overQuota++;
          this.#throttled.warn(
            "quota",
            { key, refused: result, overQuota: counters.overQuota },
            result === "too-large"
              ? "presence announcement refused: the record is larger than maxRecordBytes"
              : "presence announcement refused: maxRecords or maxInstancesPerService reached",
          );
          return;
        }
        log.info(
          { key, status: m.instance.status, weight: m.instance.weight },
          `instance ${result}`,
        );
        this.#o.changed(key);
        return;
      }
      case "hb":
        counters.heartbeats++;
        if (table.heartbeat(key, m.status, m.inflight, now, binding)) return;
        if (!table.heardOnly(key)) {
          // Not even remembered as heard: the table is full.
          counters.overQuota++;
          this.#throttled.warn(
            "quota",
            { key, refused: "over-quota", overQuota: counters.overQuota },
            "heartbeat of an unknown instance ignored: maxRecords reached",
          );
        } else if (table.shouldAsk(key, now)) {
          this.#o.unknown(key);
        }
        return;
      case "down":
        counters.downs++;
        // A down for an instance nobody announced here proves nothing about who sent it: a
        // stale key of such an instance is the reconciliation's to prune, not a message's.
        if (bound === undefined) {
          log.debug({ key }, "down for an instance not announced here; ignored");
          return;
        }
        if (table.remove(key, now)) log.info({ key, reason: m.reason }, "instance down");
        this.#o.changed(key);
        return;
    }
  }
}
