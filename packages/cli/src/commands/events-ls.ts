import {
  type EventsOverview,
  readEventsOverview,
  type StreamSummary,
} from "@natsmesh/protocol/internal";
import { ExitCode } from "../errors.js";
import type { Io } from "../io.js";
import { ConnectMode, connectNats } from "../nats/connect.js";
import { requireJetStream } from "../nats/require-jetstream.js";
import { formatAge } from "../output/age.js";
import { formatBytes } from "../output/bytes.js";
import { renderTable } from "../output/table.js";
import type { GlobalOptions } from "../program.js";

const STREAMS = ["STREAM", "EVENTS", "SIZE", "REPLICAS", "KEPT FOR", "KEPT UP TO"] as const;
const GROUPS = [
  "SERVICE",
  "PATTERN",
  "PENDING",
  "IN FLIGHT",
  "REDELIVERED",
  "DEAD LETTERS",
  "WAITING PULLS",
  "ORDERED",
  "CONSUMER",
] as const;

function streamRow(s: StreamSummary): string[] {
  return [
    s.name,
    String(s.messages),
    formatBytes(s.bytes),
    String(s.replicas),
    s.maxAgeMs > 0 ? formatAge(s.maxAgeMs) : "forever",
    s.maxBytes > 0 ? formatBytes(s.maxBytes) : "no limit",
  ];
}

/**
 * The overview as text: streams, consumer groups (with the dead letters each group made), and
 * dead letters per service (which also counts letters no single group can be credited with).
 */
export function renderEventsOverview(o: EventsOverview, prefix: string): string {
  const streams = [o.events, o.deadLetterStream].filter((s) => s !== undefined);
  if (streams.length === 0) {
    return `no event streams (nothing emitted or subscribed for prefix ${JSON.stringify(prefix)} yet)\n`;
  }
  let out = renderTable(STREAMS, streams.map(streamRow));
  out += "\n";
  out +=
    o.groups.length === 0
      ? "no consumer groups\n"
      : renderTable(
          GROUPS,
          o.groups.map((g) => [
            g.service,
            g.pattern,
            String(g.pending),
            String(g.inFlight),
            String(g.redelivered),
            String(g.deadLetters),
            String(g.waiting),
            g.ordered ? "yes" : "no",
            g.consumer,
          ]),
        );
  const dead = Object.entries(o.deadLetters).sort(([a], [b]) => (a < b ? -1 : 1));
  out += "\n";
  out +=
    dead.length === 0
      ? "no dead letters\n"
      : renderTable(
          ["SERVICE", "DEAD LETTERS"],
          dead.map(([service, n]) => [service, String(n)]),
        );
  return out;
}

/** `natsmesh events ls`: the event streams, consumer groups and dead letters. */
export async function eventsLs(global: GlobalOptions, io: Io): Promise<number> {
  const nc = await connectNats(global, "events-ls", ConnectMode.once);
  try {
    const jsm = await requireJetStream(nc);
    const overview = await readEventsOverview(jsm, global.prefix);
    io.stdout.write(
      global.json
        ? `${JSON.stringify(overview, null, 2)}\n`
        : renderEventsOverview(overview, global.prefix),
    );
    return ExitCode.ok;
  } finally {
    await nc.close();
  }
}
