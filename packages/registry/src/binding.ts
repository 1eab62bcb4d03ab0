import type { PresenceMessage, VerifiedToken } from "@natsmesh/protocol";

/**
 * Who may speak for an instance: the identity of the token that announced it (issuer and
 * subject; empty without auth) and the presence secret its agent sent. Only messages with the
 * same binding may refresh, change or take down the instance.
 */
export interface Binding {
  readonly owner: string;
  readonly secret: string | undefined;
}

/** The binding a message asks for: its token's identity and its `secret`. */
export function bindingOf(m: PresenceMessage, token: VerifiedToken | undefined): Binding {
  const owner = token === undefined ? "" : `${token.claims.iss ?? ""}\n${token.claims.sub}`;
  return { owner, secret: m.secret };
}

export function sameBinding(a: Binding, b: Binding): boolean {
  return a.owner === b.owner && a.secret === b.secret;
}

/** How long a gone instance's binding is kept, so nobody else can take over its id meanwhile. */
export const TOMBSTONE_MS = 10 * 60_000;

/**
 * Bindings of instances that went away (down or evicted), for {@link TOMBSTONE_MS}, at most
 * `max` of them (oldest first out): an instance evicted during a partition gets its id back, an
 * impostor does not get it.
 */
export class Tombstones {
  readonly #max: number;
  readonly #entries = new Map<string, { binding: Binding; at: number }>();

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  add(key: string, binding: Binding, now: number): void {
    this.#entries.delete(key);
    if (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(key, { binding, at: now });
  }

  get(key: string, now: number): Binding | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (now - entry.at <= TOMBSTONE_MS) return entry.binding;
    this.#entries.delete(key);
    return undefined;
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }
}
