import type { LoadedPresenceKeys } from "@natsmesh/sdk/internal";
import { ExitCode } from "../errors.js";
import { type Io, note } from "../io.js";
import { ConnectMode, connectNats, noteConnectionChanges } from "../nats/connect.js";
import { type FollowedPresence, followPresence } from "../nats/follow-presence.js";
import {
  openPresenceKeys,
  type PresenceKeysOption,
  presenceKeysSource,
} from "../nats/presence-keys.js";
import { painter } from "../output/colors.js";
import { formatWatchJson, formatWatchLine } from "../output/watch-event.js";
import type { GlobalOptions } from "../program.js";
import { shutdownOnSignals } from "../signals.js";

/** `natsmesh watch [service]`: a line per instance coming up, changing or going down. */
export async function watch(
  global: GlobalOptions,
  service: string | undefined,
  o: PresenceKeysOption,
  io: Io,
): Promise<number> {
  const source = presenceKeysSource(o.presenceKeys);
  using shutdown = shutdownOnSignals();
  const nc = await connectNats(global, "watch", ConnectMode.follow);
  const paint = painter(io.stdout);
  void noteConnectionChanges(nc, (message) => note(io, message));
  let keys: LoadedPresenceKeys | undefined;
  let followed: FollowedPresence | undefined;
  try {
    // A new key set may take records refused under the old one: read the bucket again.
    keys = await openPresenceKeys(nc, global.prefix, source, io, () => followed?.watch.rewatch());
    followed = followPresence(nc, global, io, {
      ...(service === undefined ? {} : { service }),
      ...(keys === undefined ? {} : { keys: keys.keys }),
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
    keys?.stop();
    // Nothing to flush: a watch only reads. close() also ends the status loop above.
    await nc.close();
  }
  return ExitCode.ok;
}
