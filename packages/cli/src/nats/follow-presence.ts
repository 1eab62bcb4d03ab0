import type { NatsConnection } from "@nats-io/nats-core";
import type { PresenceKeys } from "@natsmesh/protocol";
import { type PresenceWatch, type PresenceWatchEvent, watchPresence } from "@natsmesh/sdk/internal";
import { type CliError, errorText } from "../errors.js";
import { type Io, note } from "../io.js";
import type { GlobalOptions } from "../program.js";
import { jetStreamOff } from "./require-jetstream.js";

/** A watch of the presence bucket that tells the person running the command how it goes. */
export interface FollowedPresence {
  readonly watch: PresenceWatch;
  /** Why the watch ended by itself (no JetStream on the server), once it has. */
  fatal(): CliError | undefined;
}

/**
 * Follows `<prefix>_presence` for a long-running command (`watch`, `dashboard`): notes on stderr
 * while the bucket is missing, when the watch is interrupted and when it is back; a server
 * without JetStream at the first look ends the watch with {@link FollowedPresence.fatal}.
 */
export function followPresence(
  nc: NatsConnection,
  global: GlobalOptions,
  io: Io,
  options: {
    service?: string;
    /** Only records signed by one of these registry keys are taken. */
    keys?: PresenceKeys;
    signal: AbortSignal;
    onEvent(event: PresenceWatchEvent): void;
  },
): FollowedPresence {
  const onNote = (message: string) => note(io, message);
  let fatal: CliError | undefined;
  let last: string | undefined;
  const watch = watchPresence(nc, {
    prefix: global.prefix,
    ...(options.service === undefined ? {} : { service: options.service }),
    ...(options.keys === undefined ? {} : { keys: options.keys }),
    signal: options.signal,
    onEvent: options.onEvent,
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
        watch.stop();
      } else {
        onNote(`watch interrupted (${errorText(status.error)}); retrying`);
      }
      last = status.type;
    },
  });
  return { watch, fatal: () => fatal };
}
