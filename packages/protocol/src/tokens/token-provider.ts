import { decodeJwt } from "jose";

/** A token: a string, or a function returning one (sync or async), called again before expiry. */
export type TokenSource = string | (() => string | Promise<string>);

/** Keeps the current token of a process and refreshes it before it expires. */
export interface TokenProvider {
  /** The current token, or `undefined` while the first one is being fetched. Synchronous. */
  current(): string | undefined;
  /** Resolves with a token, fetching one when none is held yet. */
  get(): Promise<string>;
  stop(): void;
}

/** Refresh this share of a token's remaining life before it expires. */
const REFRESH_AT = 0.8;
/** Retry a failed refresh after this long. */
const RETRY_MS = 5000;

/**
 * Makes a token provider. A function source is called at once and again when 80 % of the
 * token's life has passed (from its `exp`), so calls never send an expired token when the
 * function can mint a new one; a failed refresh keeps the old token and retries.
 */
export function tokenProvider(
  source: TokenSource,
  onError: (err: unknown) => void = () => undefined,
): TokenProvider {
  if (typeof source === "string") {
    return { current: () => source, get: () => Promise.resolve(source), stop: () => undefined };
  }
  if (typeof source !== "function")
    throw new TypeError("token must be a string or a function returning one");
  let token: string | undefined;
  let pending: Promise<string> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const schedule = (ms: number) => {
    clearTimeout(timer);
    if (stopped) return;
    timer = setTimeout(
      () => void fetch().catch(onError),
      Math.max(1000, Math.min(ms, 2 ** 31 - 1)),
    );
    timer.unref();
  };
  const fetch = (): Promise<string> => {
    pending ??= (async () => {
      try {
        const next = await source();
        // The token goes into a header line: an empty value or a CR/LF (a file read with a
        // Windows line ending) would corrupt every request.
        if (typeof next !== "string" || next.length === 0 || /[\r\n]/.test(next)) {
          throw new TypeError("the token function must return a non-empty string without CR/LF");
        }
        token = next;
        schedule(refreshIn(next));
        return next;
      } catch (err) {
        schedule(RETRY_MS);
        throw err;
      } finally {
        pending = undefined;
      }
    })();
    return pending;
  };
  void fetch().catch(onError);
  return {
    current: () => token,
    get: () => (token === undefined ? fetch() : Promise.resolve(token)),
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

function refreshIn(token: string): number {
  try {
    const { exp } = decodeJwt(token);
    if (typeof exp === "number") return (exp * 1000 - Date.now()) * REFRESH_AT;
  } catch {
    // Not a JWT we can read: refresh on a fixed schedule.
  }
  return 5 * 60_000;
}
