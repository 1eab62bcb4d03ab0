import type { InstanceRecord } from "@natsmesh/protocol";
import { formatAge } from "./age.js";
import { renderTable } from "./table.js";

const HEADER = [
  "SERVICE",
  "ID",
  "VERSION",
  "WEIGHT",
  "STATUS",
  "ZONE",
  "HOST",
  "AGE",
  "EVENTS",
] as const;

/** Event subscriptions in a cell: `order.*`, with the mode after any that is not durable. */
function events(r: InstanceRecord): string {
  const subs = r.events ?? [];
  if (subs.length === 0) return "-";
  return subs.map((e) => (e.mode === "durable" ? e.pattern : `${e.pattern}(${e.mode})`)).join(",");
}

/** Instances by service, then id: the order `ls` lists them in. */
export function byServiceThenId(a: InstanceRecord, b: InstanceRecord): number {
  return a.service.localeCompare(b.service) || a.id.localeCompare(b.id);
}

function row(r: InstanceRecord, now: number): string[] {
  return [
    r.service,
    r.id,
    r.version,
    String(r.weight),
    r.status,
    r.zone ?? "-",
    r.host,
    formatAge(now - r.startedAt),
    events(r),
  ];
}

/** The instance table of `ls` (and `up`): one row per instance, by service then id. */
export function renderInstances(records: readonly InstanceRecord[], now: number): string {
  return renderTable(
    HEADER,
    [...records].sort(byServiceThenId).map((r) => row(r, now)),
  );
}
