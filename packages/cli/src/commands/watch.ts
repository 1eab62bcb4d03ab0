import { ExitCode } from "../errors.js";
import { type Io, note } from "../io.js";
import { ConnectMode, connectNats, noteConnectionChanges } from "../nats/connect.js";
import { followPresence } from "../nats/follow-presence.js";
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
  void noteConnectionChanges(nc, (message) => note(io, message));
  try {
    const followed = followPresence(nc, global, io, {
      ...(service === undefined ? {} : { service }),
      signal: shutdown.signal,
      onEvent: (event) =>
        io.stdout.write(
          global.json ? formatWatchJson(event) : formatWatchLine(event, new Date(), paint),
        ),
    });
    await followed.watch.closed;
    const fatal = followed.fatal();
    if (fatal !== undefined) throw fatal;
  } finally {
    // Nothing to flush: a watch only reads. close() also ends the status loop above.
    await nc.close();
  }
  return ExitCode.ok;
}
