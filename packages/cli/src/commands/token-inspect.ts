import { parseScope } from "@natsmesh/protocol";
import {
  decodeJwt,
  decodeProtectedHeader,
  type JWTPayload,
  type ProtectedHeaderParameters,
} from "jose";
import { ExitCode, inputError, usageError } from "../errors.js";
import { type Io, readStdin } from "../io.js";
import { formatAge } from "../output/age.js";
import type { GlobalOptions } from "../program.js";

/** Longest token read from stdin; mesh verifiers refuse anything past 8 KiB anyway. */
const MAX_STDIN = 65_536;
/** Claims holding a NumericDate, shown with the date they stand for. */
const DATE_CLAIMS = new Set(["exp", "iat", "nbf", "auth_time"]);

async function tokenText(arg: string | undefined, fallback: string | undefined, io: Io) {
  if (arg === undefined) {
    if (fallback === undefined)
      throw usageError("token inspect needs <jwt> (or --token / MESH_TOKEN)");
    return fallback;
  }
  if (arg !== "-") return arg;
  try {
    return await readStdin(io, MAX_STDIN);
  } catch (err) {
    throw inputError(`cannot read the token from stdin: ${(err as Error).message}`, err);
  }
}

/** Header and claims of a JWT, decoded but NOT verified; garbage is an input error (exit 2). */
function decode(text: string): { header: ProtectedHeaderParameters; claims: JWTPayload } {
  // A pasted `Authorization` value works too.
  const token = text.trim().replace(/^Bearer\s+/i, "");
  if (token === "") throw inputError("no token given (the input is empty)");
  try {
    return { claims: decodeJwt(token), header: decodeProtectedHeader(token) };
  } catch (err) {
    throw inputError(
      `not a JWT (a signed token, header.payload.signature): ${(err as Error).message}`,
      err,
    );
  }
}

/** How long the token is (or is not yet, or no longer) valid, in words. */
function validityWords(claims: JWTPayload, nowSec: number): string[] {
  const lines: string[] = [];
  const { exp, nbf } = claims;
  if (typeof nbf === "number" && nbf > nowSec) {
    lines.push(`not valid for another ${formatAge((nbf - nowSec) * 1000)}`);
  }
  if (typeof exp !== "number") lines.push("never expires (no exp: mesh verifiers refuse it)");
  else if (exp <= nowSec) lines.push(`expired ${formatAge((nowSec - exp) * 1000)} ago`);
  else lines.push(`expires in ${formatAge((exp - nowSec) * 1000)}`);
  return lines;
}

function claimText(name: string, value: unknown): string {
  if (typeof value === "string") return value;
  if (DATE_CLAIMS.has(name) && typeof value === "number" && Number.isFinite(value)) {
    const date = new Date(value * 1000);
    return Number.isNaN(date.getTime()) ? String(value) : `${value} (${date.toISOString()})`;
  }
  return JSON.stringify(value);
}

function section(title: string, entries: Record<string, unknown>): string[] {
  const names = Object.keys(entries);
  const width = Math.max(0, ...names.map((n) => n.length));
  return [title, ...names.map((n) => `  ${n.padEnd(width)}  ${claimText(n, entries[n])}`)];
}

/** `natsmesh token inspect [jwt]`: what a token says, decoded without verifying it. */
export async function tokenInspect(
  global: GlobalOptions,
  jwt: string | undefined,
  io: Io,
): Promise<number> {
  const { header, claims } = decode(await tokenText(jwt, global.token, io));
  if (global.json) {
    const nowSec = Math.floor(Date.now() / 1000);
    const expiresIn = typeof claims.exp === "number" ? claims.exp - nowSec : null;
    io.stdout.write(`${JSON.stringify({ header, claims, expiresIn }, null, 2)}\n`);
    return ExitCode.ok;
  }
  const scope = parseScope(claims.scope);
  io.stdout.write(
    [
      "(decoded only: the signature is NOT verified)",
      ...section("header", header),
      ...section("claims", claims),
      ...validityWords(claims, Date.now() / 1000),
      ...(scope.length === 0 ? ["scope: none"] : ["scope", ...scope.map((p) => `  ${p}`)]),
      "",
    ].join("\n"),
  );
  return ExitCode.ok;
}
