import { issueToken } from "@natsmesh/protocol";
import { decodeJwt } from "jose";
import { ExitCode, errorText, inputError } from "../errors.js";
import { readPrivateKey } from "../files/private-key-file.js";
import type { Io } from "../io.js";
import type { GlobalOptions } from "../program.js";

/** The flags of `natsmesh token issue`, checked by their parsers. */
export interface TokenIssueOptions {
  readonly key: string;
  readonly sub: string;
  readonly scope: readonly string[];
  /** Lifetime in seconds. */
  readonly ttl: number;
  readonly issuer: string | undefined;
  readonly audience: string | undefined;
}

/** `natsmesh token issue`: signs a token with a private key file and prints it. */
export async function tokenIssue(
  global: GlobalOptions,
  { key: keyFile, sub, scope, ttl, issuer, audience }: TokenIssueOptions,
  io: Io,
): Promise<number> {
  const key = readPrivateKey(keyFile, io);

  let token: string;
  try {
    token = await issueToken({
      key,
      sub,
      scope: [...scope],
      ttl,
      ...(issuer === undefined ? {} : { issuer }),
      ...(audience === undefined ? {} : { audience }),
    });
  } catch (err) {
    // The flags were checked by their parsers: what is left to fail is the key material itself.
    throw inputError(`cannot sign with the key in ${keyFile}: ${errorText(err)}`, err);
  }
  if (global.json) {
    const { exp } = decodeJwt(token);
    io.stdout.write(`${JSON.stringify({ token, kid: key.kid ?? null, exp }, null, 2)}\n`);
  } else {
    io.stdout.write(`${token}\n`);
  }
  return ExitCode.ok;
}
