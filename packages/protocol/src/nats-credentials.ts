import { readFileSync } from "node:fs";
import { inspect } from "node:util";
import {
  type Authenticator,
  credsAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
} from "@nats-io/nats-core";

/**
 * How a natsmesh process proves who it is to NATS: one of a user and password, a token, a
 * `.creds` file (user JWT and nkey seed, as `nsc` writes them) or an nkey seed file. NATS-side
 * permissions then decide what it may publish and subscribe to (docs/security.md,
 * docker/nats/permissions.conf).
 */
export interface NatsCredentials {
  /** NATS user name; needs `password`. @default `NATS_USER` */
  user?: string;
  /** The user's password. @default `NATS_PASSWORD` */
  password?: string;
  /** A NATS authorization token (not a natsmesh JWT). @default `NATS_TOKEN` */
  token?: string;
  /** Path of a `.creds` file, read at every (re)connect so it can be rotated. @default `NATS_CREDS` */
  credsFile?: string;
  /** Path of a file holding an nkey seed (`SU…`), read at every (re)connect. @default `NATS_NKEY` */
  nkeyFile?: string;
}

/** The longest credential value taken: a password, a token or a file path, never a payload. */
const MAX_CREDENTIAL_LENGTH = 4096;

const FIELDS = ["user", "password", "token", "credsFile", "nkeyFile"] as const;
const REDACTED = "[redacted]";

/** The variable each field falls back on: the names the `nats` CLI reads too. */
export const NATS_CREDENTIAL_VARIABLES = {
  user: "NATS_USER",
  password: "NATS_PASSWORD",
  token: "NATS_TOKEN",
  credsFile: "NATS_CREDS",
  nkeyFile: "NATS_NKEY",
} as const satisfies Record<(typeof FIELDS)[number], string>;

/**
 * Checked credentials, never printed: JSON and `util.inspect` show the user and file paths but
 * not the password or token, so logging an options object cannot leak them.
 */
export interface ResolvedNatsCredentials extends Readonly<NatsCredentials> {
  /** What a log line may say: `user:password`, `token`, `creds`, `nkey`. */
  readonly method: "user" | "token" | "creds" | "nkey";
}

/**
 * Credentials from the environment (`NATS_USER`, `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_CREDS`,
 * `NATS_NKEY`; blank is unset), or `undefined` when none is set. Options given in code win.
 */
export function natsCredentialsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): NatsCredentials | undefined {
  const out: NatsCredentials = {};
  for (const field of FIELDS) {
    const value = env[NATS_CREDENTIAL_VARIABLES[field]];
    // Passwords and tokens keep their spaces; a blank value means unset.
    if (value !== undefined && value.trim() !== "") out[field] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * Checks `credentials` (exactly one method; non-empty strings; a password needs a user) and
 * returns a new, frozen, unprintable copy, or `undefined` for none. Throws `TypeError` naming
 * the fields, never their values. Files are not read here: they are read at each connect.
 */
export function resolveNatsCredentials(
  credentials: NatsCredentials | undefined,
): ResolvedNatsCredentials | undefined {
  if (credentials === undefined) return undefined;
  if (typeof credentials !== "object" || credentials === null) {
    throw new TypeError("credentials must be an object");
  }
  const given: NatsCredentials = {};
  for (const field of FIELDS) {
    const value = credentials[field];
    if (value === undefined) continue;
    if (typeof value !== "string" || value === "") {
      throw new TypeError(`credentials.${field} must be a non-empty string`);
    }
    if (value.length > MAX_CREDENTIAL_LENGTH) {
      throw new TypeError(
        `credentials.${field} is longer than ${MAX_CREDENTIAL_LENGTH} characters (a password or a file path)`,
      );
    }
    given[field] = value;
  }
  if (given.password !== undefined && given.user === undefined) {
    throw new TypeError("credentials.password needs credentials.user");
  }
  const methods = [
    given.user === undefined ? undefined : "user",
    given.token === undefined ? undefined : "token",
    given.credsFile === undefined ? undefined : "creds",
    given.nkeyFile === undefined ? undefined : "nkey",
  ].filter((m) => m !== undefined) as ResolvedNatsCredentials["method"][];
  if (methods.length === 0) return undefined;
  if (methods.length > 1) {
    throw new TypeError(
      `give one kind of NATS credentials (user and password, token, creds file or nkey file), got ${methods.join(", ")}`,
    );
  }
  const shown = (): Record<string, string> => {
    const out: Record<string, string> = { method: methods[0]! };
    for (const field of FIELDS) {
      const value = given[field];
      if (value === undefined) continue;
      out[field] = field === "password" || field === "token" ? REDACTED : value;
    }
    return out;
  };
  const resolved = { ...given, method: methods[0]! };
  Object.defineProperties(resolved, {
    toJSON: { value: shown, enumerable: false },
    [inspect.custom]: { value: () => shown(), enumerable: false },
  });
  return Object.freeze(resolved);
}

/** Reads a credentials file at connect time, naming the file (and only the file) on failure. */
function fileReader(path: string, what: string): () => Uint8Array {
  return () => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`cannot read the NATS ${what} file ${path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  };
}

/**
 * The nats.js authenticator for `credentials`. Authenticators, unlike the `user`/`pass`/`token`
 * connection options, keep secrets out of the connection's `options`, which anyone may log.
 */
export function natsAuthenticator(credentials: ResolvedNatsCredentials): Authenticator {
  switch (credentials.method) {
    case "user":
      return usernamePasswordAuthenticator(credentials.user!, credentials.password);
    case "token":
      return tokenAuthenticator(credentials.token!);
    case "creds":
      return credsAuthenticator(fileReader(credentials.credsFile!, "creds"));
    case "nkey": {
      const read = fileReader(credentials.nkeyFile!, "nkey seed");
      // A seed file may end with a newline (or hold comments as nsc writes them): keep the seed.
      return nkeyAuthenticator(() => {
        const seed = new TextDecoder().decode(read()).match(/\bS[A-Z2-7]{57}\b/)?.[0];
        if (seed === undefined) {
          throw new Error(`the NATS nkey file ${credentials.nkeyFile} holds no nkey seed`);
        }
        return new TextEncoder().encode(seed);
      });
    }
  }
}
