import type { IncomingMessage, ServerResponse } from "node:http";
import type { InstanceRecord } from "@natsmesh/protocol";
import type { EventsOverview } from "@natsmesh/protocol/internal";
import {
  type MeterProvider as ApiMeterProvider,
  type BatchObservableResult,
  type Meter,
  metrics,
  type Observable,
} from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import type { RegistryStats } from "./stats.js";

/** Name of the registry's meter (the OpenTelemetry instrumentation scope). */
export const REGISTRY_METER = "@natsmesh/registry";

/** What the metrics are read from, when a scrape or a reader asks. */
export interface MetricsSource {
  stats(): RegistryStats;
  /** Every live instance in memory. */
  instances(): Iterable<InstanceRecord>;
  leader(): boolean;
  /** The event streams' consumer groups and dead letters; `undefined` when not read. */
  events(): EventsOverview | undefined;
}

const COUNTERS = [
  ["announcements", "announcements", "Valid up messages received."],
  ["heartbeats", "heartbeats", "Valid heartbeat messages received."],
  ["downs", "downs", "Valid down messages received."],
  ["evictions", "evictions", "Instances evicted for missing heartbeats."],
  ["invalid_messages", "invalid", "Presence messages dropped as invalid."],
  [
    "unauthorized_messages",
    "unauthorized",
    "Presence messages dropped for a missing or insufficient token.",
  ],
  [
    "dropped_messages",
    "dropped",
    "Presence messages dropped unverified: too many new tokens waiting for a signature check.",
  ],
  [
    "impostor_messages",
    "impostors",
    "Presence messages refused: another identity or presence secret announced the instance.",
  ],
  [
    "over_quota",
    "overQuota",
    "Presence messages refused by a quota (instances per service, records, record size).",
  ],
  [
    "foreign_changes",
    "foreign",
    "Changes of the presence bucket by anyone but this leader, each repaired.",
  ],
  ["kv_writes", "kvWrites", "Presence KV puts and deletes by this registry."],
  ["kv_errors", "kvErrors", "Presence KV writes that failed and were retried."],
  ["syncs", "syncs", "Presence sync requests published."],
] as const satisfies readonly (readonly [string, keyof RegistryStats, string])[];

const GROUP_GAUGES = [
  ["pending", "pending", "Events stored and not yet delivered to the consumer group."],
  ["in_flight", "inFlight", "Events delivered to the group and not yet acknowledged."],
  ["redelivered", "redelivered", "Unacknowledged events of the group delivered more than once."],
] as const;

/**
 * The registry's metrics as OpenTelemetry observable instruments, read from its memory only
 * when collected: on a scrape of `/metrics` (rendered by OpenTelemetry's Prometheus exporter,
 * names with underscores: `natsmesh_registry_instances`, `…_evictions_total`) and by the user's
 * global MeterProvider when one is registered, even after the registry started (see
 * {@link RegistryMetrics.follow}). Nothing is recorded per presence message.
 */
export class RegistryMetrics {
  readonly #exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
  readonly #provider: MeterProvider;
  readonly #source: MetricsSource;
  readonly #detachOwn: () => void;
  /** The global MeterProvider the instruments were made on, and what detaches them. */
  #global: { provider: ApiMeterProvider; detach: () => void } | undefined;

  constructor(source: MetricsSource, registryId: string) {
    this.#provider = new MeterProvider({
      resource: resourceFromAttributes({
        "service.name": "natsmesh-registry",
        "service.instance.id": registryId,
      }),
      readers: [this.#exporter],
    });
    this.#source = source;
    this.#detachOwn = observe(this.#provider.getMeter(REGISTRY_METER), source);
    this.follow();
  }

  /**
   * Moves the instruments to the global MeterProvider if it changed: `@opentelemetry/api` hands
   * out no-op meters until one is registered and tells nobody when it is, so the registry looks
   * again on each sweep (a property read when nothing changed).
   */
  follow(): void {
    const provider = metrics.getMeterProvider();
    if (provider === this.#global?.provider) return;
    this.#global?.detach();
    this.#global = { provider, detach: observe(provider.getMeter(REGISTRY_METER), this.#source) };
  }

  /** Answers a scrape: the Prometheus text format. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    this.#exporter.getMetricsRequestHandler(req, res);
  }

  /** Detaches the instruments from the global provider and ends the scrape endpoint's. */
  async stop(): Promise<void> {
    this.#global?.detach();
    this.#global = undefined;
    this.#detachOwn();
    await this.#provider.shutdown();
  }
}

/** Creates the instruments on `meter`; returns what detaches their callback. */
function observe(meter: Meter, source: MetricsSource): () => void {
  const p = "natsmesh.registry.";
  const instances = meter.createObservableGauge(`${p}instances`, {
    description: "Live instances known to this registry, by service and status.",
    unit: "{instance}",
  });
  const leader = meter.createObservableGauge(`${p}leader`, {
    description: "Whether this registry holds the leader lease (1) or not (0).",
  });
  const leases = meter.createObservableCounter(`${p}lease_changes`, {
    description:
      "Times this registry took the leader lease (change=acquired) or lost it (change=lost).",
    unit: "{change}",
  });
  const counters = COUNTERS.map(
    ([name, field, description]) =>
      [meter.createObservableCounter(`${p}${name}`, { description }), field] as const,
  );
  const groups = GROUP_GAUGES.map(
    ([name, field, description]) =>
      [
        meter.createObservableGauge(`natsmesh.events.${name}`, { description, unit: "{event}" }),
        field,
      ] as const,
  );
  const deadLetters = meter.createObservableGauge("natsmesh.events.dead_letters", {
    description:
      "Dead letters kept in the dead-letter stream, by consumer group; those no group is " +
      "credited with (overlapping patterns, group gone) by service alone.",
    unit: "{event}",
  });
  const all: Observable[] = [
    instances,
    leader,
    leases,
    deadLetters,
    ...counters.map(([c]) => c),
    ...groups.map(([g]) => g),
  ];
  const instanceSeries = new GaugeSeries(instances);
  const groupSeries = groups.map(([gauge, field]) => [new GaugeSeries(gauge), field] as const);
  const deadLetterSeries = new GaugeSeries(deadLetters);
  const callback = (r: BatchObservableResult) => {
    const stats = source.stats();
    const counts = new Map<string, number>();
    for (const { service, status } of source.instances()) {
      const key = `${service} ${status}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    instanceSeries.observe(
      r,
      Array.from(counts, ([key, n]) => {
        const [service, status] = key.split(" ");
        return [key, { service: service!, status: status! }, n] as const;
      }),
    );
    r.observe(leader, source.leader() ? 1 : 0);
    r.observe(leases, stats.leaderTerms, { change: "acquired" });
    r.observe(leases, stats.leaderLosses, { change: "lost" });
    for (const [counter, field] of counters) r.observe(counter, stats[field]);
    const events = source.events();
    if (events === undefined) return;
    for (const [series, field] of groupSeries) {
      series.observe(
        r,
        events.groups.map(
          (g) =>
            [
              `${g.service} ${g.pattern}`,
              { service: g.service, pattern: g.pattern },
              g[field],
            ] as const,
        ),
      );
    }
    // Per group, plus per service what no group is credited with, so that a sum by service is
    // every dead letter of the service.
    const unclaimed = new Map(Object.entries(events.deadLetters));
    const letters: (readonly [string, Record<string, string>, number])[] = [];
    for (const g of events.groups) {
      letters.push([
        `${g.service} ${g.pattern}`,
        { service: g.service, pattern: g.pattern },
        g.deadLetters,
      ]);
      unclaimed.set(g.service, (unclaimed.get(g.service) ?? 0) - g.deadLetters);
    }
    for (const [service, n] of unclaimed) if (n > 0) letters.push([service, { service }, n]);
    deadLetterSeries.observe(r, letters);
  };
  meter.addBatchObservableCallback(callback, all);
  return () => meter.removeBatchObservableCallback(callback, all);
}

/** Series a gauge keeps reporting as 0 once gone, at most this many. */
const MAX_SERIES = 10_000;

/**
 * The series of one gauge. OpenTelemetry's SDK repeats an observable's last value for a series
 * that is no longer observed, so a service whose instances all went would show them forever:
 * series seen before and gone now are observed as 0 (as Prometheus users expect a count to drop).
 */
class GaugeSeries {
  readonly #gauge: Observable;
  readonly #known = new Map<string, Record<string, string>>();

  constructor(gauge: Observable) {
    this.#gauge = gauge;
  }

  observe(
    r: BatchObservableResult,
    values: readonly (readonly [string, Record<string, string>, number])[],
  ): void {
    const now = new Set<string>();
    for (const [key, attrs, n] of values) {
      now.add(key);
      if (!this.#known.has(key) && this.#known.size < MAX_SERIES) this.#known.set(key, attrs);
      r.observe(this.#gauge, n, attrs);
    }
    for (const [key, attrs] of this.#known) if (!now.has(key)) r.observe(this.#gauge, 0, attrs);
  }
}
