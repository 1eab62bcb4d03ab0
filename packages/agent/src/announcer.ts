import { randomBytes } from "node:crypto";
import {
  type MsgHdrs,
  type NatsConnection,
  headers as natsHeaders,
  type Subscription,
} from "@nats-io/nats-core";
import {
  Header,
  type InstanceRecord,
  type PresenceMessage,
  type Subjects,
} from "@natsmesh/protocol";
import type { Logger } from "pino";

export interface AnnouncerOptions {
  connection: NatsConnection;
  subjects: Subjects;
  heartbeatMs: number;
  record: () => InstanceRecord;
  inflight: () => number;
  /** The concurrency limit, sent with `inflight` in heartbeats. */
  limit: number;
  /** Runs before each heartbeat, so the heartbeat carries a status updated for it. */
  beforeHeartbeat: () => void;
  token: () => string | undefined;
  log: Logger;
}

/**
 * Publishes an agent's presence: `up` on start, on change, on `P.presence.sync` and after a
 * reconnect; `hb` every heartbeat; `down` on stop. Publishing never throws into the agent.
 */
export class Announcer {
  readonly #o: AnnouncerOptions;
  readonly #subject: string;
  /**
   * This process's presence secret (128 random bits): registries accept `hb` and `down` for this
   * instance only with it, so a sibling sharing the service's token cannot take it down.
   */
  readonly #secret = randomBytes(16).toString("base64url");
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  #sync: Subscription | undefined;

  constructor(options: AnnouncerOptions) {
    this.#o = options;
    const r = options.record();
    this.#subject = options.subjects.presence(r.service, r.id);
  }

  start(): void {
    this.#sync = this.#o.connection.subscribe(this.#o.subjects.presenceSync(), {
      callback: (err) => {
        if (err === null) this.up();
      },
    });
    this.up();
    this.#timer = setInterval(() => this.#heartbeat(), this.#o.heartbeatMs);
    this.#timer.unref();
  }

  up(): void {
    this.#publish({ kind: "up", instance: this.#o.record(), secret: this.#secret });
  }

  #heartbeat(): void {
    this.#o.beforeHeartbeat();
    const r = this.#o.record();
    this.#publish({
      kind: "hb",
      service: r.service,
      id: r.id,
      seq: ++this.#seq,
      inflight: this.#o.inflight(),
      limit: this.#o.limit,
      status: r.status,
      secret: this.#secret,
    });
  }

  /** Stops heartbeats and publishes `down`. */
  stop(reason: string): void {
    clearInterval(this.#timer);
    this.#sync?.unsubscribe();
    const r = this.#o.record();
    this.#publish({ kind: "down", service: r.service, id: r.id, reason, secret: this.#secret });
  }

  #publish(message: PresenceMessage): void {
    const nc = this.#o.connection;
    if (nc.isClosed()) return;
    try {
      nc.publish(this.#subject, JSON.stringify(message), { headers: this.#headers() });
    } catch (err) {
      this.#o.log.warn({ err, kind: message.kind }, "presence message could not be published");
    }
  }

  #headers(): MsgHdrs | undefined {
    const token = this.#o.token();
    if (token === undefined) return undefined;
    const h = natsHeaders();
    h.set(Header.Authorization, `Bearer ${token}`);
    return h;
  }
}
