import { isValidName } from "@natsmesh/protocol";
import type { ArgumentSpec } from "./command.js";
import { usageError } from "./errors.js";

/** The optional `[service]` argument of `ls` and `watch`. */
export const SERVICE_ARGUMENT: ArgumentSpec = {
  name: "service",
  description: "Only instances of this service",
};

/** Checks a service name from the command line; a bad one is a usage error (exit 2). */
export function serviceArgument(value: string | undefined): string | undefined {
  if (value !== undefined && !isValidName(value)) {
    throw usageError(
      `service must be 1-64 characters of [A-Za-z0-9_-], got ${JSON.stringify(value)}`,
    );
  }
  return value;
}
