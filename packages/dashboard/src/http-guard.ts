import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";

/**
 * Headers on every dashboard response. The page loads only its own scripts and styles and
 * connects only to its own origin; nothing inline runs, even if a peer-controlled string were
 * ever put into markup.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
};

const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);

/** True for an address or name that only reaches this machine. */
export function isLoopback(host: string): boolean {
  if (LOOPBACK_NAMES.has(host) || host.endsWith(".localhost")) return true;
  return isIP(host) === 4 && host.startsWith("127.");
}

/** The host name of a `Host` header, without the port. */
function hostName(header: string): string {
  if (header.startsWith("[")) {
    const end = header.indexOf("]");
    return end === -1 ? header : header.slice(0, end + 1);
  }
  const colon = header.indexOf(":");
  return colon === -1 ? header : header.slice(0, colon);
}

/**
 * Whether a request may be answered. A server bound to a loopback address answers only requests
 * that name a loopback host: a web page elsewhere could otherwise point a name of its own at
 * 127.0.0.1 (DNS rebinding) and read the dashboard from the browser of someone running it.
 */
export function hostAllowed(req: IncomingMessage, listenHost: string): boolean {
  if (!isLoopback(listenHost)) return true;
  const header = req.headers.host;
  return header !== undefined && isLoopback(hostName(header.toLowerCase()));
}
