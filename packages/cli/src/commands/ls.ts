import type { InstanceRecord } from "@natsmesh/protocol";
import { readPresence } from "@natsmesh/sdk/internal";
import { ExitCode } from "../errors.js";
import { type Io, note } from "../io.js";
import { ConnectMode, connectNats } from "../nats/connect.js";
import { jetStreamOff } from "../nats/require-jetstream.js";
import { formatAge } from "../output/age.js";
import { renderTable } from "../output/table.js";
import type { GlobalOptions } from "../program.js";

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

function byServiceThenId(a: InstanceRecord, b: InstanceRecord): number {
  return a.service.localeCompare(b.service) || a.id.localeCompare(b.id);
}

function row(r: InstanceRecord, now: number): string[] {
  const age = formatAge(now - r.startedAt);
  return [
    r.service,
    r.id,
    r.version,
    String(r.weight),
    r.status,
    r.zone ?? "-",
    r.host,
    age,
    events(r),
  ];
}

/** `natsmesh ls [service]`: the instances in the presence bucket, as a table or JSON. */
export async function ls(
  global: GlobalOptions,
  service: string | undefined,
  io: Io,
): Promise<number> {
  const nc = await connectNats(global, "ls", ConnectMode.once);
  try {
    const records = await readPresence(nc, {
      prefix: global.prefix,
      service,
      onInvalid: (key, err) =>
        note(io, `skipping invalid record at key ${JSON.stringify(key)}: ${err.message}`),
    }).catch((err: unknown) => {
      throw jetStreamOff(err) ?? err;
    });
    records?.sort(byServiceThenId);
    if (global.json) {
      io.stdout.write(`${JSON.stringify(records ?? [], null, 2)}\n`);
    } else if (records === undefined) {
      io.stdout.write(
        `no instances (no registry has run for prefix ${JSON.stringify(global.prefix)} yet)\n`,
      );
    } else if (records.length === 0) {
      io.stdout.write("no instances\n");
    } else {
      const now = Date.now();
      io.stdout.write(
        renderTable(
          HEADER,
          records.map((r) => row(r, now)),
        ),
      );
    }
    return ExitCode.ok;
  } finally {
    await nc.close();
  }
}
