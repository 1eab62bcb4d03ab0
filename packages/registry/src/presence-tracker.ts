import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import {
  Header,
  MeshError,
  parsePresenceMessage,
  type Subjects,
  scopeAllowsAnnounce,
  type TokenGate,
  type VerifiedToken,
} from "@natsmesh/protocol";
import type { Logger } from "pino";
import type { InstanceTable } from "./instance-table.js";
import type { Counters } from "./stats.js";

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
  readonly #base: string;
  #sub: Subscription | undefined;
  /** Messages waiting behind a token verification, so presence is applied in arrival order. */
  #queue: Promise<void> | undefined;
  #queued = 0;

  constructor(options: PresenceTrackerOptions) {
    this.#o = options;
    this.#base = `${options.subjects.prefix}.presence.`;
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
    const gate = this.#o.gate;
    if (gate === undefined) {
      this.#safely(msg.subject, msg.data, performance.now());
      return;
    }
    const authorization = msg.headers?.get(Header.Authorization) || undefined;
    const checked = this.#queued === 0 ? gate.check(authorization) : undefined;
    if (checked !== undefined && !(checked instanceof Promise)) {
      this.#safely(msg.subject, msg.data, performance.now(), checked);
      return;
    }
    // A verification is in flight: this message and every later one wait their turn.
    const received = performance.now();
    const pending = checked ?? Promise.resolve(gate.check(authorization));
    this.#queued++;
    this.#queue = (this.#queue ?? Promise.resolve())
      .then(() => pending)
      .then((result) => this.#safely(msg.subject, msg.data, received, result))
      .finally(() => {
        this.#queued--;
      });
  }

  #safely(subject: string, data: Uint8Array, now: number, token?: VerifiedToken | MeshError): void {
    try {
      this.#handle(subject, data, now, token);
    } catch (e) {
      this.#o.log.error({ err: e, subject }, "presence message handling failed");
    }
  }

  /** Applies one presence message received on `subject` at monotonic time `now`. */
  #handle(subject: string, data: Uint8Array, now: number, token?: VerifiedToken | MeshError): void {
    const { table, counters, log } = this.#o;
    const parsed = parsePresenceMessage(data, this.#o.subjects.prefix);
    if (!parsed.ok) {
      counters.invalid++;
      log.debug({ subject, reason: parsed.error.message }, "invalid presence message dropped");
      return;
    }
    const m = parsed.value;
    const service = m.kind === "up" ? m.instance.service : m.service;
    const id = m.kind === "up" ? m.instance.id : m.id;
    // The subject is what NATS permissions can restrict; a body claiming another instance
    // than its subject is a forgery or a bug, never an announcement.
    if (subject !== `${this.#base}${service}.${id}`) {
      counters.invalid++;
      log.debug({ subject, service, id }, "presence message for another subject dropped");
      return;
    }
    if (this.#o.gate !== undefined) {
      // A token for one service can never announce another: the scope must name this one.
      const allowed =
        token !== undefined &&
        !(token instanceof MeshError) &&
        scopeAllowsAnnounce(token.scopes, service);
      if (!allowed) {
        counters.unauthorized++;
        const reason =
          token instanceof MeshError ? token.message : "scope lacks announce:" + service;
        log.debug({ subject, reason }, "unauthorized presence message dropped");
        return;
      }
    }
    const key = `${service}.${id}`;
    switch (m.kind) {
      case "up": {
        counters.announcements++;
        const result = table.up(key, m.instance, now);
        if (result === "same") return;
        log.info(
          { key, status: m.instance.status, weight: m.instance.weight },
          `instance ${result}`,
        );
        this.#o.changed(key);
        return;
      }
      case "hb":
        counters.heartbeats++;
        if (!table.heartbeat(key, m.status, m.inflight, now) && table.shouldAsk(key, now)) {
          this.#o.unknown(key);
        }
        return;
      case "down":
        counters.downs++;
        if (table.remove(key)) log.info({ key, reason: m.reason }, "instance down");
        // Even for an instance this registry never saw: its key may still be in KV.
        this.#o.changed(key);
        return;
    }
  }
}
