import { type PresenceWatchStatus, watchPresence } from "@natsmesh/sdk/internal";
import { type CliError, ExitCode, errorText } from "../errors.js";
import { type Io, note } from "../io.js";
import { ConnectMode, connectNats, noteConnectionChanges } from "../nats/connect.js";
import { jetStreamOff } from "../nats/require-jetstream.js";
import { painter } from "../output/colors.js";
import { formatWatchJson, formatWatchLine } from "../output/watch-event.js";
import type { GlobalOptions } from "../program.js";
import { shutdownOnSignals } from "../signals.js";

/** `natsmesh watch [service]`: a line per instance coming up, changing or going down. */
export async function watch(
  global: GlobalOptions,
  service: string | undefined,
  io: Io,
): Promise<number> {
  using shutdown = shutdownOnSignals();
  const nc = await connectNats(global, "watch", ConnectMode.follow);
  const paint = painter(io.stdout);
  const onNote = (message: string) => note(io, message);
  void noteConnectionChanges(nc, onNote);
  try {
    let fatal: CliError | undefined;
    let last: PresenceWatchStatus["type"] | undefined;
    const watcher = watchPresence(nc, {
      prefix: global.prefix,
      service,
      signal: shutdown.signal,
      onEvent: (event) =>
        io.stdout.write(
          global.json ? formatWatchJson(event) : formatWatchLine(event, new Date(), paint),
        ),
      onInvalid: (key, err) =>
        onNote(`skipping invalid record at key ${JSON.stringify(key)}: ${err.message}`),
      onStatus: (status) => {
        if (status.type === "waiting") {
          onNote(
            `waiting for the bucket ${status.bucket} ` +
              `(no registry has run for prefix ${JSON.stringify(global.prefix)} yet)`,
          );
        } else if (status.type === "current") {
          if (last !== undefined) onNote(`watching ${status.bucket}`);
        } else if (last === undefined && jetStreamOff(status.error) !== undefined) {
          // The very first look found no JetStream: that will not fix itself.
          fatal = jetStreamOff(status.error);
          watcher.stop();
        } else {
          onNote(`watch interrupted (${errorText(status.error)}); retrying`);
        }
        last = status.type;
      },
    });
    await watcher.closed;
    if (fatal !== undefined) throw fatal;
  } finally {
    // Nothing to flush: a watch only reads. close() also ends the status loop above.
    await nc.close();
  }
  return ExitCode.ok;
}
