/** Every way starting or running a test server can fail, as a literal union. */
export const NATS_TESTING_ERROR_CODES = [
  "NATS_SERVER_NOT_FOUND",
  "START_FAILED",
  "PORT_IN_USE",
  "START_TIMEOUT",
  "STOP_TIMEOUT",
  "CLUSTER_TIMEOUT",
  "DISPOSED",
  "DOCKER_UNAVAILABLE",
] as const;

/** One of {@link NATS_TESTING_ERROR_CODES}. */
export type NatsTestingErrorCode = (typeof NATS_TESTING_ERROR_CODES)[number];

/**
 * The one error class of `@natsmesh/testing`. Tests should branch on `code`; the message is
 * for humans and carries the server's last log lines when it has them.
 */
export class NatsTestingError extends Error {
  /** What went wrong, stable across releases. */
  readonly code: NatsTestingErrorCode;

  constructor(code: NatsTestingErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NatsTestingError";
    this.code = code;
  }
}

/** How to get a server, appended to every "not found" error. */
export const INSTALL_HINT =
  "Install nats-server >= 2.9 and put it on PATH (Debian/Ubuntu: `apt-get install nats-server`; " +
  "macOS: `brew install nats-server`; any OS: `go install github.com/nats-io/nats-server/v2@latest` " +
  "or a release from https://github.com/nats-io/nats-server/releases), pass the `binary` option, " +
  "or run a Docker engine so Testcontainers can start the nats image.";
