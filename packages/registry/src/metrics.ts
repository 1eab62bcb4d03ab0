import type { EventsOverview } from "@natsmesh/protocol/internal";
import type { RegistryStats } from "./stats.js";

/** Content type of the Prometheus text exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** What one scrape reports. */
export interface MetricsInput {
  stats: RegistryStats;
  /** Live instances per service. */
  services: ReadonlyMap<string, number>;
  leader: boolean;
  /** The event streams' consumer groups and dead letters; `undefined` when not read. */
  events?: EventsOverview | undefined;
}

const COUNTERS = [
  ["announcements_total", "announcements", "Valid up messages received."],
  ["heartbeats_total", "heartbeats", "Valid heartbeat messages received."],
  ["downs_total", "downs", "Valid down messages received."],
  ["evictions_total", "evictions", "Instances evicted for missing heartbeats."],
  ["invalid_messages_total", "invalid", "Presence messages dropped as invalid."],
  [
    "unauthorized_messages_total",
    "unauthorized",
    "Presence messages dropped for a missing or insufficient token.",
  ],
  [
    "dropped_messages_total",
    "dropped",
    "Presence messages dropped unverified: too many new tokens waiting for a signature check.",
  ],
  [
    "impostor_messages_total",
    "impostors",
    "Presence messages refused: another identity or presence secret announced the instance.",
  ],
  [
    "over_quota_total",
    "overQuota",
    "Presence messages refused by a quota (instances per service, records, record size).",
  ],
  [
    "foreign_changes_total",
    "foreign",
    "Changes of the presence bucket by anyone but this leader, each repaired.",
  ],
  ["kv_writes_total", "kvWrites", "Presence KV puts and deletes by this registry."],
  ["kv_errors_total", "kvErrors", "Presence KV writes that failed and were retried."],
  ["syncs_total", "syncs", "Presence sync requests published."],
] as const satisfies readonly (readonly [string, keyof RegistryStats, string])[];

// Label values are service names ([A-Za-z0-9_-]), but escaping keeps the format valid anyway.
function label(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** Renders the registry's metrics in the Prometheus text format (version 0.0.4). */
export function renderMetrics({ stats, services, leader, events }: MetricsInput): string {
  const p = "natsmesh_registry_";
  const lines = [
    `# HELP ${p}instances Live instances known to this registry, by service.`,
    `# TYPE ${p}instances gauge`,
  ];
  for (const [service, count] of [...services].sort(([a], [b]) => (a < b ? -1 : 1))) {
    lines.push(`${p}instances{service="${label(service)}"} ${count}`);
  }
  for (const [name, field, help] of COUNTERS) {
    lines.push(`# HELP ${p}${name} ${help}`, `# TYPE ${p}${name} counter`);
    lines.push(`${p}${name} ${stats[field]}`);
  }
  lines.push(
    `# HELP ${p}leader Whether this registry holds the leader lease (1) or not (0).`,
    `# TYPE ${p}leader gauge`,
    `${p}leader ${leader ? 1 : 0}`,
  );
  if (events !== undefined) lines.push(...eventLines(events));
  return `${lines.join("\n")}\n`;
}

const GROUP_GAUGES = [
  ["pending", "pending", "Events stored and not yet delivered to the consumer group."],
  ["in_flight", "inFlight", "Events delivered to the group and not yet acknowledged."],
  ["redelivered", "redelivered", "Unacknowledged events of the group delivered more than once."],
] as const;

/** Per consumer group and per service gauges of the event streams. */
function eventLines(o: EventsOverview): string[] {
  const p = "natsmesh_events_";
  const lines: string[] = [];
  for (const [name, field, help] of GROUP_GAUGES) {
    lines.push(`# HELP ${p}${name} ${help}`, `# TYPE ${p}${name} gauge`);
    for (const g of o.groups) {
      lines.push(
        `${p}${name}{service="${label(g.service)}",pattern="${label(g.pattern)}"} ${g[field]}`,
      );
    }
  }
  lines.push(
    `# HELP ${p}dead_letters Dead letters kept in the dead-letter stream, by service.`,
    `# TYPE ${p}dead_letters gauge`,
  );
  const services = new Set([...o.groups.map((g) => g.service), ...Object.keys(o.deadLetters)]);
  for (const service of [...services].sort()) {
    lines.push(`${p}dead_letters{service="${label(service)}"} ${o.deadLetters[service] ?? 0}`);
  }
  return lines;
}
