import { issueToken, isValidName, parseScope } from "@natsmesh/protocol";
import { decodeJwt } from "jose";
import type { Command } from "../command.js";
import { ExitCode, errorText, inputError, usageError } from "../errors.js";
import { flagOrEnv, stringOption } from "../option-values.js";
import { readPrivateKey } from "../private-key-file.js";
import { parseTimeSpan } from "../time-span.js";

type Values = Readonly<Record<string, string | boolean | undefined>>;

const DEFAULT_TTL = "1h";

/** A required flag's value (parsing has checked it is there), which may not be blank. */
function nonEmpty(values: Values, name: string): string {
  const value = stringOption(values, name)?.trim() ?? "";
  if (value === "") throw usageError(`--${name} must not be empty`);
  return value;
}

const part = (s: string) => s === "*" || isValidName(s);

/** A pattern a scope check can match: `*`, `svc.method` with `*` for either, `announce:svc`. */
function validPattern(p: string): boolean {
  if (p === "*") return true;
  if (p.startsWith("announce:")) return part(p.slice("announce:".length));
  const [service, method, ...rest] = p.split(".");
  return rest.length === 0 && method !== undefined && part(service!) && part(method);
}

function scopeOption(values: Values): string[] {
  const patterns = parseScope(nonEmpty(values, "scope"));
  const bad = patterns.find((p) => !validPattern(p));
  if (bad !== undefined) {
    throw usageError(
      `scope pattern ${JSON.stringify(bad)} would never match: use service.method, service.*, ` +
        "*.method, * or announce:service",
    );
  }
  return patterns;
}

/** `natsmesh token issue`: signs a token with a private key file and prints it. */
export const tokenIssue: Command = {
  name: "token issue",
  summary: "Sign a token with a private key file and print it",
  description:
    "Prints the JWT alone on stdout, so TOKEN=$(natsmesh token issue ...) works; with --json,\n" +
    "{ token, kid, exp }. The scope is a space-separated list of patterns: billing.charge,\n" +
    "billing.* (a service), *.read (a method of any service), * (anything), announce:billing\n" +
    "(an agent's right to announce the service). Needs no NATS.",
  arguments: [],
  options: {
    key: {
      type: "string",
      value: "FILE",
      description: "Private key file (<kid>.private.jwk.json from keys generate)",
      required: true,
    },
    sub: {
      type: "string",
      value: "NAME",
      description: "Who the token is for (sub)",
      required: true,
    },
    scope: {
      type: "string",
      value: "PATTERNS",
      description: 'What it may call, e.g. "billing.* greeter.hello"',
      required: true,
    },
    ttl: {
      type: "string",
      value: "TTL",
      description: `Lifetime: seconds (90) or a span (30m, 1h, 2d) (default ${DEFAULT_TTL})`,
    },
    issuer: {
      type: "string",
      value: "ISS",
      description: "iss claim (env MESH_ISSUER; default none)",
    },
    audience: {
      type: "string",
      value: "AUD",
      description: "aud claim (env MESH_AUDIENCE; default natsmesh)",
    },
  },
  async run({ global, values, io }) {
    // Every flag is checked before the key file is read, so a usage error comes first.
    const keyFile = nonEmpty(values, "key");
    const sub = nonEmpty(values, "sub");
    const scope = scopeOption(values);
    const ttl = parseTimeSpan(stringOption(values, "ttl") ?? DEFAULT_TTL, "ttl");
    const issuer = flagOrEnv(values, io.env, "issuer", "MESH_ISSUER");
    const audience = flagOrEnv(values, io.env, "audience", "MESH_AUDIENCE");
    const key = readPrivateKey(keyFile, io);

    let token: string;
    try {
      token = await issueToken({
        key,
        sub,
        scope,
        ttl,
        ...(issuer === undefined ? {} : { issuer }),
        ...(audience === undefined ? {} : { audience }),
      });
    } catch (err) {
      // The options are checked above: what is left to fail is the key material itself.
      throw inputError(`cannot sign with the key in ${keyFile}: ${errorText(err)}`, err);
    }
    if (global.json) {
      const { exp } = decodeJwt(token);
      io.stdout.write(`${JSON.stringify({ token, kid: key.kid ?? null, exp }, null, 2)}\n`);
    } else {
      io.stdout.write(`${token}\n`);
    }
    return ExitCode.ok;
  },
};
