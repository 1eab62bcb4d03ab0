import {
  createInbox,
  Empty,
  type MsgHdrs,
  type NatsConnection,
  headers as natsHeaders,
} from "@nats-io/nats-core";
import { Header } from "@natsmesh/protocol";
import { inboxPrefixOf, type TokenProvider } from "@natsmesh/protocol/internal";
import { type InstanceSample, readStatsReply } from "./stats-reply.js";

/** What one scatter-gather of `$SRV.STATS.<service>` brought back. */
export interface StatsRound {
  /** Samples of the expected instances, by id; at most one each. */
  readonly samples: ReadonlyMap<string, InstanceSample>;
  /** The refusal code when an agent wanted a (better) token: `UNAUTHENTICATED` or `FORBIDDEN`. */
  readonly refused: string | undefined;
  /** Replies dropped: invalid, for another service, from an unknown or repeated instance. */
  readonly dropped: number;
}

/** Options of {@link gatherStats}. */
export interface GatherOptions {
  connection: NatsConnection;
  service: string;
  /** Ids of the service's live instances: only their replies count. */
  expected: ReadonlySet<string>;
  /** Longest wait for replies. */
  maxWaitMs: number;
  /** The `Authorization` token, when the agents check tokens. */
  token: TokenProvider | undefined;
}

/** Replies read per round beyond the expected ones, so impostors cannot crowd out real agents. */
const SPARE_REPLIES = 16;

/**
 * Asks every instance of a service for its stats (`$SRV.STATS.<service>`, ADR-32) and gathers
 * the replies on an inbox of its own. Bounded every way: it ends when every expected instance
 * has answered, after `maxWaitMs`, or after `2 × expected + 16` replies (the server stops
 * delivering then); each reply is size-checked and validated, and only replies of expected
 * instances count, so anyone who can publish to the inbox can at most lose their own reply.
 */
export function gatherStats(o: GatherOptions): Promise<StatsRound> {
  const samples = new Map<string, InstanceSample>();
  let refused: string | undefined;
  let dropped = 0;
  const nc = o.connection;
  // Under the connection's inbox prefix: agents answer only inbox reply subjects.
  const inbox = createInbox(inboxPrefixOf(nc));
  return new Promise<StatsRound>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sub.unsubscribe();
      resolve({ samples, refused, dropped });
    };
    const sub = nc.subscribe(inbox, {
      max: o.expected.size * 2 + SPARE_REPLIES,
      callback: (err, msg) => {
        if (done) return;
        // "No responders" (a 503 status): nobody is there to answer.
        if (err !== null || msg.headers?.code === 503) {
          finish();
          return;
        }
        const reply = readStatsReply(msg);
        if (reply.kind === "refused") {
          refused = reply.code;
        } else if (
          reply.kind === "invalid" ||
          reply.sample.service !== o.service ||
          !o.expected.has(reply.sample.id) ||
          samples.has(reply.sample.id)
        ) {
          dropped++;
        } else {
          samples.set(reply.sample.id, reply.sample);
          if (samples.size === o.expected.size) finish();
        }
      },
    });
    void sub.closed.then(finish);
    timer = setTimeout(finish, o.maxWaitMs);
    const token = o.token?.current();
    let h: MsgHdrs | undefined;
    if (token !== undefined) {
      h = natsHeaders();
      h.set(Header.Authorization, `Bearer ${token}`);
    }
    try {
      nc.publish(`$SRV.STATS.${o.service}`, Empty, {
        reply: inbox,
        ...(h === undefined ? {} : { headers: h }),
      });
    } catch {
      finish();
    }
  });
}
