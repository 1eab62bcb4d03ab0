import type { NatsConnection } from "@nats-io/nats-core";
import type { NestedEmitOptions, NestedMesh, NestedRequestOptions } from "@natsmesh/agent";
import { MeshError } from "@natsmesh/protocol";
import type { JwksSource, TokenSource } from "@natsmesh/protocol/internal";
import { connectMesh, type Mesh } from "@natsmesh/sdk";

/** What the agent's handlers call through `ctx.mesh`, and the means to close it. */
export interface LazyMesh extends NestedMesh {
  emit: NonNullable<NestedMesh["emit"]>;
  /** Closes the SDK mesh if a handler ever opened it; idempotent. */
  close(): Promise<void>;
}

/**
 * An SDK mesh for a service module's nested calls and emits, opened on the agent's connection
 * the first time a handler uses `ctx.mesh`: a module that never calls out costs nothing (no
 * presence watch), one that does gets the full SDK with the agent's own token.
 */
export function lazyMesh(
  connection: NatsConnection,
  prefix: string,
  token: TokenSource | undefined,
  presenceKeys?: JwksSource,
): LazyMesh {
  let opened: Promise<Mesh> | undefined;
  let closed: Promise<void> | undefined;
  const mesh = (): Promise<Mesh> => {
    if (closed !== undefined) {
      return Promise.reject(new MeshError("UNAVAILABLE", "the agent is stopping"));
    }
    opened ??= connectMesh({
      connection,
      prefix,
      // Without a token here the SDK would fall back on MESH_TOKEN, which is the same token.
      ...(token === undefined ? {} : { token }),
      // Without keys here the SDK reads MESH_PRESENCE_KEYS.
      ...(presenceKeys === undefined ? {} : { presence: { keys: presenceKeys } }),
    });
    // A failed open is tried again by the next call, not remembered.
    opened.catch(() => {
      opened = undefined;
    });
    return opened;
  };
  return {
    async request<T>(
      service: string,
      method: string,
      payload?: unknown,
      options?: NestedRequestOptions,
    ): Promise<T> {
      return (await mesh()).request<T>(service, method, payload, options);
    },
    async emit(event: string, payload?: unknown, options?: NestedEmitOptions) {
      return (await mesh()).emit(event, payload, options);
    },
    close() {
      closed ??= (async () => {
        const open = opened;
        if (open !== undefined) await (await open.catch(() => undefined))?.close();
      })();
      return closed;
    },
  };
}
