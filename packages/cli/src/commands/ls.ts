import { readPresence } from "@natsmesh/sdk/internal";
import { ExitCode } from "../errors.js";
import { type Io, note } from "../io.js";
import { ConnectMode, connectNats } from "../nats/connect.js";
import {
  openPresenceKeys,
  type PresenceKeysOption,
  presenceKeysSource,
} from "../nats/presence-keys.js";
import { jetStreamOff } from "../nats/require-jetstream.js";
import { byServiceThenId, renderInstances } from "../output/instances.js";
import type { GlobalOptions } from "../program.js";

/** `natsmesh ls [service]`: the instances in the presence bucket, as a table or JSON. */
export async function ls(
  global: GlobalOptions,
  service: string | undefined,
  o: PresenceKeysOption,
  io: Io,
): Promise<number> {
  const source = presenceKeysSource(o.presenceKeys);
  const nc = await connectNats(global, "ls", ConnectMode.once);
  try {
    const keys = await openPresenceKeys(nc, global.prefix, source, io);
    const records = await readPresence(nc, {
      prefix: global.prefix,
      service,
      ...(keys === undefined ? {} : { keys: keys.keys }),
      onInvalid: (key, err) =>
        note(io, `skipping invalid record at key ${JSON.stringify(key)}: ${err.message}`),
    })
      .catch((err: unknown) => {
        throw jetStreamOff(err) ?? err;
      })
      .finally(() => keys?.stop());
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
      io.stdout.write(renderInstances(records, Date.now()));
    }
    return ExitCode.ok;
  } finally {
    await nc.close();
  }
}
