import type { IncomingMessage, ServerResponse } from "node:http";
import type { InstanceRecord } from "@natsmesh/protocol";
import {
  type ConnectionFollower,
  followConnection,
  type TokenProvider,
  tokenProvider,
} from "@natsmesh/protocol/internal";
import { dict } from "./dict.js";
import { gatherStats, type StatsRound } from "./gather-stats.js";
import { hostAllowed, SECURITY_HEADERS } from "./http-guard.js";
import {
  type DashboardOptions,
  type ResolvedDashboardOptions,
  resolveDashboardOptions,
} from "./options.js";
import type { PresenceChange } from "./presence-source.js";
import { SseHub, sseEvent } from "./sse-hub.js";
import { loadStaticFiles, type StaticFile } from "./static-files.js";
import { type InstanceRate, type ServicePoint, Traffic } from "./traffic.js";

/** Whether the dashboard's NATS connection is up; `since` is Unix epoch milliseconds. */
export interface NatsState {
  state: "connected" | "disconnected" | "closed";
  since: number;
}

/**
 * Where a service's stats stand: `ok` (its instances answer), `waiting` (not asked yet),
 * `silent` (nobody answered in time), or the code an agent refused with (`UNAUTHENTICATED`,
 * `FORBIDDEN`: the dashboard needs a token whose scope holds `stats:<service>`).
 */
export type StatsState = "ok" | "waiting" | "silent" | "UNAUTHENTICATED" | "FORBIDDEN";

/** A presence change as the feed shows it; `at` is Unix epoch milliseconds. */
export interface FeedEntry extends PresenceChange {
  at: number;
}

/** A service's traffic: recent points, each instance's last rate, and whether stats come in. */
export interface ServiceTraffic {
  points: readonly ServicePoint[];
  instances: Record<string, InstanceRate>;
  stats: StatsState;
}

/** What a page starts from (the first event of its stream, and `GET /dashboard/state`). */
export interface DashboardState {
  v: 1;
  prefix: string;
  pollMs: number;
  nats: NatsState;
  instances: readonly InstanceRecord[];
  feed: readonly FeedEntry[];
  services: Record<string, ServiceTraffic>;
}

/** The `stats` event: one poll of every service. */
export interface StatsEvent {
  at: number;
  services: Record<
    string,
    { point: ServicePoint; instances: Record<string, InstanceRate>; stats: StatsState }
  >;
}

/** A dashboard: a request handler for its pages and event stream, and what feeds them. */
export interface Dashboard extends AsyncDisposable {
  /**
   * Answers a request under the dashboard's paths (`/`, `/dashboard`, `/dashboard/…`) and
   * returns true; returns false, touching nothing, for any other path.
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** The current state, as a new page gets it. */
  state(): DashboardState;
  /** Ends the event streams, stops polling and listening. Idempotent. */
  close(): Promise<void>;
}

const BASE = "/dashboard";
/** Services asked for stats at once in a round. */
const PARALLEL_SERVICES = 8;
/** Longest wait for a service's replies; less when polls are more frequent. */
const MAX_WAIT_MS = 1000;
const KEEP_ALIVE_MS = 15_000;

class DashboardImpl implements Dashboard {
  readonly #o: ResolvedDashboardOptions;
  readonly #files: ReadonlyMap<string, StaticFile>;
  readonly #hub: SseHub;
  readonly #traffic: Traffic;
  readonly #token: TokenProvider | undefined;
  readonly #feed: FeedEntry[] = [];
  readonly #rates = new Map<string, Record<string, InstanceRate>>();
  readonly #statsState = new Map<string, StatsState>();
  readonly #unsubscribe: () => void;
  #nats: NatsState = { state: "connected", since: Date.now() };
  readonly #status: ConnectionFollower;
  #timer: NodeJS.Timeout | undefined;
  #polling = false;
  #inRound = false;
  #closing: Promise<void> | undefined;

  constructor(o: ResolvedDashboardOptions) {
    this.#o = o;
    this.#files = loadStaticFiles();
    this.#traffic = new Traffic(o.historyPoints);
    this.#token =
      o.token === undefined
        ? undefined
        : tokenProvider(o.token, (err) =>
            o.logger.warn({ err }, "the dashboard's token could not be fetched"),
          );
    this.#hub = new SseHub({
      maxClients: o.maxClients,
      maxBufferedBytes: o.maxBufferedBytes,
      keepAliveMs: KEEP_ALIVE_MS,
      onActive: (active) => this.#setPolling(active),
    });
    this.#unsubscribe = o.presence.subscribe((change) => this.#onPresence(change));
    if (o.connection.isClosed()) this.#nats = { state: "closed", since: Date.now() };
    void o.connection.closed().then(() => this.#setNats("closed"));
    this.#status = followConnection(o.connection, {
      disconnect: () => this.#setNats("disconnected"),
      reconnect: () => this.#setNats("connected"),
    });
  }

  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const path = (req.url ?? "/").split("?")[0]!;
    if (path !== "/" && path !== BASE && !path.startsWith(`${BASE}/`)) return false;
    if (!hostAllowed(req, this.#o.listenHost)) {
      this.#text(res, 421, "this dashboard answers only to localhost, 127.0.0.1 and [::1]\n");
      return true;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      this.#text(res, 405, "method not allowed\n");
      return true;
    }
    if (path === "/" || path === BASE) {
      res.writeHead(302, { ...SECURITY_HEADERS, Location: `${BASE}/` });
      res.end();
      return true;
    }
    const name = path.slice(BASE.length + 1);
    if (name === "events") {
      if (req.method === "HEAD") this.#send(req, res, 200, "text/event-stream", "");
      else this.#hub.accept(res, sseEvent("state", this.state()), SECURITY_HEADERS);
      return true;
    }
    if (name === "state") {
      this.#send(req, res, 200, "application/json; charset=utf-8", JSON.stringify(this.state()));
      return true;
    }
    const file = this.#files.get(name === "" ? "index.html" : name);
    if (file === undefined) this.#text(res, 404, "not found\n");
    else this.#send(req, res, 200, file.type, file.body);
    return true;
  }

  state(): DashboardState {
    const instances = this.#o.presence.snapshot();
    const services = dict<ServiceTraffic>();
    for (const service of new Set(instances.map((r) => r.service))) {
      services[service] = {
        points: this.#traffic.history(service),
        instances: this.#rates.get(service) ?? dict(),
        stats: this.#statsState.get(service) ?? "waiting",
      };
    }
    return {
      v: 1,
      prefix: this.#o.prefix,
      pollMs: this.#o.pollMs,
      nats: this.#nats,
      instances,
      feed: this.#feed,
      services,
    };
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    this.#unsubscribe();
    this.#setPolling(false);
    this.#hub.close();
    this.#token?.stop();
    this.#status.stop();
  }

  #send(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    type: string,
    body: string | Buffer,
  ): void {
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      "Content-Type": type,
      "Content-Length": Buffer.byteLength(body),
      "Cache-Control": "no-store",
    });
    res.end(req.method === "HEAD" ? undefined : body);
  }

  #text(res: ServerResponse, status: number, text: string): void {
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      "Content-Type": "text/plain; charset=utf-8",
      "Content-Length": Buffer.byteLength(text),
    });
    res.end(text);
  }

  #onPresence(change: PresenceChange): void {
    const entry: FeedEntry = { ...change, at: Date.now() };
    if (this.#o.feedSize > 0) {
      this.#feed.push(entry);
      if (this.#feed.length > this.#o.feedSize) this.#feed.shift();
    }
    if (change.type === "down") {
      const { service, id } = change.instance;
      this.#traffic.forgetInstance(service, id);
      delete this.#rates.get(service)?.[id];
      if (!this.#o.presence.snapshot().some((r) => r.service === service)) {
        this.#traffic.forgetService(service);
        this.#rates.delete(service);
        this.#statsState.delete(service);
      }
    }
    this.#hub.send("presence", entry);
  }

  #setNats(state: NatsState["state"]): void {
    if (this.#nats.state === state || this.#nats.state === "closed") return;
    this.#nats = { state, since: Date.now() };
    this.#hub.send("nats", this.#nats);
  }

  #setPolling(active: boolean): void {
    if (active === this.#polling) return;
    this.#polling = active;
    if (!active) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    } else if (!this.#inRound && this.#timer === undefined) {
      void this.#round();
    }
  }

  /** One poll of every service, then the next one `pollMs` later: rounds never overlap. */
  async #round(): Promise<void> {
    this.#timer = undefined;
    this.#inRound = true;
    try {
      if (this.#nats.state === "connected") await this.#pollAll();
    } catch (err) {
      this.#o.logger.warn({ err }, "stats poll failed");
    } finally {
      this.#inRound = false;
    }
    if (this.#polling) {
      this.#timer = setTimeout(() => void this.#round(), this.#o.pollMs);
      this.#timer.unref();
    }
  }

  async #pollAll(): Promise<void> {
    const expected = new Map<string, Set<string>>();
    for (const r of this.#o.presence.snapshot()) {
      let ids = expected.get(r.service);
      if (ids === undefined) {
        ids = new Set();
        expected.set(r.service, ids);
      }
      ids.add(r.id);
    }
    const queue = [...expected];
    const rounds = new Map<string, StatsRound>();
    const maxWaitMs = Math.min(MAX_WAIT_MS, Math.floor(this.#o.pollMs / 2));
    await Promise.all(
      Array.from({ length: Math.min(PARALLEL_SERVICES, queue.length) }, async () => {
        for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
          const [service, ids] = next;
          rounds.set(
            service,
            await gatherStats({
              connection: this.#o.connection,
              service,
              expected: ids,
              maxWaitMs,
              token: this.#token,
            }),
          );
        }
      }),
    );
    if (!this.#polling) return;
    const now = performance.now();
    const at = Date.now();
    const event: StatsEvent = { at, services: dict() };
    for (const [service, round] of rounds) {
      const { point, instances } = this.#traffic.add(service, round.samples, now, at);
      const stats: StatsState =
        round.samples.size > 0 ? "ok" : ((round.refused as StatsState | undefined) ?? "silent");
      this.#rates.set(service, instances);
      this.#statsState.set(service, stats);
      event.services[service] = { point, instances, stats };
      if (round.dropped > 0) {
        this.#o.logger.debug({ service, dropped: round.dropped }, "stats replies dropped");
      }
    }
    this.#hub.send("stats", event);
  }
}

/**
 * Creates a dashboard over a presence source and a NATS connection. Mount it on any node:http
 * server by calling `handle(req, res)` first; {@link serveDashboard} runs one on its own port.
 * Stats are gathered only while at least one page is open. Throws `TypeError` on bad options.
 */
export function createDashboard(options: DashboardOptions): Dashboard {
  return new DashboardImpl(resolveDashboardOptions(options));
}
