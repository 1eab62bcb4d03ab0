import type { InstanceRecord } from "@natsmesh/protocol";
import type { PresenceWatchEvent } from "@natsmesh/sdk/internal";

/**
 * The instance records a presence watch has seen, by key, and waits on them: every check
 * registered with {@link PresenceRecords.until} runs again after each change.
 */
export class PresenceRecords {
  readonly byKey = new Map<string, InstanceRecord>();
  #checks = new Set<() => void>();

  apply(event: PresenceWatchEvent): void {
    if (event.type === "down") this.byKey.delete(event.key);
    else this.byKey.set(event.key, event.instance);
    for (const check of this.#checks) check();
  }

  /**
   * Resolves `true` once every id in `ids` is present (or, with `gone`, none is), `false` after
   * `ms` or when `signal` aborts.
   */
  until(ids: readonly string[], gone: boolean, ms: number, signal?: AbortSignal): Promise<boolean> {
    const holds = () => {
      const present = new Set([...this.byKey.values()].map((r) => r.id));
      return ids.every((id) => present.has(id) !== gone);
    };
    if (holds()) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", abort);
        this.#checks.delete(check);
        resolve(ok);
      };
      const check = () => {
        if (holds()) finish(true);
      };
      const abort = () => finish(false);
      const timer = setTimeout(abort, ms);
      signal?.addEventListener("abort", abort);
      this.#checks.add(check);
    });
  }
}
