import { type PresenceWatchStatus, watchPresence } from "@natsmesh/sdk/internal";
import { painter } from "../colors.js";
import type { Command } from "../command.js";
import { ConnectMode, connectNats, noteConnectionChanges } from "../connect.js";
import { type CliError, ExitCode, errorText } from "../errors.js";
import { note } from "../io.js";
import { jetStreamOff } from "../jetstream-manager.js";
import { SERVICE_ARGUMENT, serviceArgument } from "../service-argument.js";
import { shutdownOnSignals } from "../shutdown.js";
import { formatWatchJson, formatWatchLine } from "../watch-event.js";

/** `natsmesh watch [service]`: a line per instance coming up, changing or going down. */
export const watch: Command = {
  name: "watch",
  summary: "Follow instances as they come up, change and go down",
  description:
    "Prints the current instances as `up` lines, then one line per change, until SIGINT or\n" +
    "SIGTERM. Waits for the presence bucket if no registry has created it yet, and keeps\n" +
    "watching across NATS server restarts. With --json, one JSON object per line.",
  arguments: [SERVICE_ARGUMENT],
  options: {},
  async run({ global, args, io }) {
    const service = serviceArgument(args[0]);
    using shutdown = shutdownOnSignals();
    const nc = await connectNats(global, "watch", ConnectMode.follow);
    const paint = painter(io.stdout, io.env);
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
  },
};
