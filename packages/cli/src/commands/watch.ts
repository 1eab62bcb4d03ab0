import { painter } from "../colors.js";
import type { Command } from "../command.js";
import { ConnectMode, connectNats, noteConnectionChanges } from "../connect.js";
import { ExitCode } from "../errors.js";
import { note } from "../io.js";
import { followPresence } from "../presence-follower.js";
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
      await followPresence(nc, {
        prefix: global.prefix,
        service,
        signal: shutdown.signal,
        onEvent: (event) =>
          io.stdout.write(
            global.json ? formatWatchJson(event) : formatWatchLine(event, new Date(), paint),
          ),
        onInvalid: (key, reason) =>
          onNote(`skipping invalid record at key ${JSON.stringify(key)}: ${reason}`),
        onNote,
      });
    } finally {
      // Nothing to flush: a watch only reads. close() also ends the status loop above.
      await nc.close();
    }
    return ExitCode.ok;
  },
};
