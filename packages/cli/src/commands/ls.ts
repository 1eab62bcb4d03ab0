import type { InstanceRecord } from "@natsmesh/protocol";
import { readPresence } from "@natsmesh/sdk/internal";
import { formatAge } from "../age.js";
import type { Command } from "../command.js";
import { ConnectMode, connectNats } from "../connect.js";
import { ExitCode } from "../errors.js";
import { note } from "../io.js";
import { jetStreamOff } from "../jetstream-manager.js";
import { SERVICE_ARGUMENT, serviceArgument } from "../service-argument.js";
import { renderTable } from "../table.js";

const HEADER = ["SERVICE", "ID", "VERSION", "WEIGHT", "STATUS", "ZONE", "HOST", "AGE"] as const;

function byServiceThenId(a: InstanceRecord, b: InstanceRecord): number {
  return a.service.localeCompare(b.service) || a.id.localeCompare(b.id);
}

function row(r: InstanceRecord, now: number): string[] {
  const age = formatAge(now - r.startedAt);
  return [r.service, r.id, r.version, String(r.weight), r.status, r.zone ?? "-", r.host, age];
}

/** `natsmesh ls [service]`: the instances in the presence bucket, as a table or JSON. */
export const ls: Command = {
  name: "ls",
  summary: "List the running instances recorded in the presence bucket",
  description:
    "Reads the KV bucket <prefix>_presence directly; needs no registry to be running right now,\n" +
    "only one to have run. Records that do not validate are skipped with a warning on stderr.",
  arguments: [SERVICE_ARGUMENT],
  options: {},
  async run({ global, args, io }) {
    const service = serviceArgument(args[0]);
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
  },
};
