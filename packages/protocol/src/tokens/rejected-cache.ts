import { createHash } from "node:crypto";
import type { TokenRejection } from "./rejections.js";

/**
 * Tokens refused lately, by SHA-256 digest (a fixed 44 characters whatever the token's length,
 * so the cache's memory is bounded by its entry count), with why. Oldest first out.
 */
export class RejectedCache {
  readonly #max: number;
  readonly #entries = new Map<string, TokenRejection>();

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(token: string): TokenRejection | undefined {
    if (this.#entries.size === 0) return undefined;
    return this.#entries.get(digest(token));
  }

  add(token: string, reason: TokenRejection): void {
    if (this.#max === 0) return;
    if (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(digest(token), reason);
  }

  clear(): void {
    this.#entries.clear();
  }
}

function digest(token: string): string {
  return createHash("sha256").update(token).digest("base64");
}
