import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { connectionOptions, MeshError, subjects } from "@natsmesh/protocol";
import { type CallScope, call } from "./call.js";
import { Link } from "./link.js";
import {
  type MeshOptions,
  type RequestOptions,
  type ResolvedMeshOptions,
  resolveMeshOptions,
} from "./options.js";
import { ReplyMux } from "./reply-mux.js";

/** A client of the mesh. */
export interface Mesh extends AsyncDisposable {
  /** The NATS connection the mesh uses. */
  readonly connection: NatsConnection;
  /**
   * Calls `<service>.<method>` and resolves with the decoded reply. Rejects with a `MeshError`
   * (the handler's own, or `UNAVAILABLE`, `DEADLINE_EXCEEDED`, …), or the signal's reason.
   */
  request<T = unknown>(
    service: string,
    method: string,
    payload?: unknown,
    options?: RequestOptions,
  ): Promise<T>;
  /**
   * Lets pending calls finish up to `closeTimeoutMs`, rejects the rest with `UNAVAILABLE` and
   * closes the connection if the mesh opened it. Idempotent: every call returns the same promise.
   */
  close(): Promise<void>;
}

class MeshImpl implements Mesh {
  readonly #scope: CallScope;
  readonly #ownsConnection: boolean;
  #closing: Promise<void> | undefined;

  constructor(o: ResolvedMeshOptions, nc: NatsConnection, ownsConnection: boolean) {
    const log = o.logger.child({ component: "sdk" });
    this.#scope = {
      nc,
      mux: new ReplyMux(nc, o.connection === undefined ? o.inboxPrefix : inboxPrefixOf(nc)),
      link: new Link(nc, log),
      subjects: subjects(o.prefix),
      options: o,
    };
    this.#ownsConnection = ownsConnection;
  }

  get connection(): NatsConnection {
    return this.#scope.nc;
  }

  request<T = unknown>(
    service: string,
    method: string,
    payload?: unknown,
    options?: RequestOptions,
  ): Promise<T> {
    if (this.#closing !== undefined) {
      return Promise.reject(new MeshError("UNAVAILABLE", "the mesh client is closed"));
    }
    return call(this.#scope, service, method, payload, options) as Promise<T>;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const { mux, nc, options } = this.#scope;
    await mux.idle(options.closeTimeoutMs);
    mux.close(new MeshError("UNAVAILABLE", "the mesh client closed before the reply came"));
    if (this.#ownsConnection && !nc.isClosed()) await nc.drain().catch(() => nc.close());
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** The inbox prefix a given connection was opened with; replies must use it to pass permissions. */
function inboxPrefixOf(nc: NatsConnection): string {
  return (nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix ?? "_INBOX";
}

/**
 * Connects to the mesh (or uses `connection`). Throws `TypeError` on invalid options before
 * connecting; rejects when NATS cannot be reached.
 */
export async function connectMesh(options: MeshOptions = {}): Promise<Mesh> {
  const o = resolveMeshOptions(options);
  const nc =
    o.connection ??
    (await connect({
      ...connectionOptions(o.servers, "natsmesh-sdk"),
      inboxPrefix: o.inboxPrefix,
    }));
  const mesh = new MeshImpl(o, nc, o.connection === undefined);
  await nc.flush();
  return mesh;
}
