import {
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  headers as natsHeaders,
  type Subscription,
} from "@nats-io/nats-core";
import {
  errorReply,
  Header,
  type InstanceRecord,
  MeshError,
  QUEUE_GROUP,
  type Subjects,
  type VerifiedToken,
} from "@natsmesh/protocol";
import type { Logger } from "pino";
import type { AgentStats } from "./agent-stats.js";
import type { AgentAuth } from "./auth.js";
import type { EndpointStats } from "./endpoint-stats.js";
import type { ReplyGuard } from "./reply-guard.js";

/** NATS micro (ADR-32) verbs. */
const VERBS = ["PING", "INFO", "STATS"] as const;
type Verb = (typeof VERBS)[number];

export interface DiscoveryOptions {
  connection: NatsConnection;
  subjects: Subjects;
  record: () => InstanceRecord;
  stats: ReadonlyMap<string, EndpointStats>;
  description: string;
  /**
   * With auth on: PING and INFO carry names only, and STATS is answered only to a token whose
   * scope holds `stats:<service>`.
   */
  auth: AgentAuth | undefined;
  startedAt: string;
  replies: ReplyGuard;
  /** The agent's counters, reported as `mesh` in `STATS`. */
  counters: () => AgentStats;
  log: Logger;
}

/**
 * Answers `$SRV.PING|INFO|STATS` (and their `.<service>` and `.<service>.<id>` forms) with the
 * `io.nats.micro.v1.*` documents, so `nats micro ls` and any ADR-32 client see the mesh.
 */
export class Discovery {
  readonly #o: DiscoveryOptions;
  readonly #subs: Subscription[] = [];

  constructor(options: DiscoveryOptions) {
    this.#o = options;
  }

  start(): void {
    const { service, id } = this.#o.record();
    for (const verb of VERBS) {
      for (const subject of [
        `$SRV.${verb}`,
        `$SRV.${verb}.${service}`,
        `$SRV.${verb}.${service}.${id}`,
      ]) {
        this.#subs.push(
          this.#o.connection.subscribe(subject, {
            callback: (err, msg) => {
              if (err === null && this.#o.replies.admits(msg)) this.#answer(verb, msg);
            },
          }),
        );
      }
    }
  }

  stop(): void {
    for (const sub of this.#subs.splice(0)) sub.unsubscribe();
  }

  #answer(verb: Verb, msg: Msg): void {
    const auth = this.#o.auth;
    if (verb !== "STATS" || auth === undefined) {
      this.#respond(msg, this.#document(verb));
      return;
    }
    // Stats tell load, failures and the last error message: with auth on, only to a holder of
    // `stats:<service>` (the dashboard's token).
    const checked = auth.checkStats(
      msg.headers?.get(Header.Authorization) || undefined,
      this.#o.record().service,
    );
    if (checked instanceof Promise) {
      checked.then(
        (result) => this.#answerStats(msg, result),
        (err) => this.#o.log.warn({ err }, "stats token check failed"),
      );
    } else {
      this.#answerStats(msg, checked);
    }
  }

  #answerStats(msg: Msg, result: VerifiedToken | MeshError): void {
    if (!(result instanceof MeshError)) {
      this.#respond(msg, this.#document("STATS"));
      return;
    }
    const h = natsHeaders();
    this.#respond(msg, errorReply(result, h), h);
  }

  #respond(msg: Msg, body: unknown, h?: MsgHdrs): void {
    try {
      msg.respond(JSON.stringify(body), h === undefined ? undefined : { headers: h });
    } catch (err) {
      this.#o.log.warn({ err, subject: msg.subject }, "discovery reply could not be sent");
    }
  }

  #document(verb: Verb): Record<string, unknown> {
    const r = this.#o.record();
    const namesOnly = this.#o.auth !== undefined;
    const metadata = namesOnly ? {} : { ...r.metadata };
    const base = { name: r.service, id: r.id, version: r.version, metadata };
    switch (verb) {
      case "PING":
        return { type: "io.nats.micro.v1.ping_response", ...base };
      case "INFO":
        return {
          type: "io.nats.micro.v1.info_response",
          ...base,
          description: namesOnly ? "" : this.#o.description,
          endpoints: r.methods.map((method) => ({
            name: method,
            subject: this.#o.subjects.service(r.service, method),
            queue_group: QUEUE_GROUP,
            metadata: null,
          })),
        };
      case "STATS":
        return {
          type: "io.nats.micro.v1.stats_response",
          ...base,
          started: this.#o.startedAt,
          mesh: this.#o.counters(),
          endpoints: r.methods.map((method) => {
            const s = this.#o.stats.get(method);
            const requests = s?.requests ?? 0;
            return {
              name: method,
              subject: this.#o.subjects.service(r.service, method),
              queue_group: QUEUE_GROUP,
              num_requests: requests,
              num_errors: s?.errors ?? 0,
              last_error: s?.lastError ?? "",
              processing_time: s?.processingNs ?? 0,
              average_processing_time:
                requests === 0 ? 0 : Math.round((s?.processingNs ?? 0) / requests),
              data: s?.data() ?? { latency_us: [], errors: {} },
            };
          }),
        };
    }
  }
}
