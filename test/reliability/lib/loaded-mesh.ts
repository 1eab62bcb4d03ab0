import { connectMesh, type Mesh } from "@natsmesh/sdk";
import {
  cleanup,
  killAllProcesses,
  type NatsServer,
  startNatsServer,
  uniquePrefix,
  waitUntil,
} from "@natsmesh/testing";
import { type MeshPlace, startRegistryProcess } from "./mesh-processes.mjs";

/** A mesh the scenarios load: one nats-server, one registry process and the SDK in this process. */
export interface LoadedMesh {
  server: NatsServer;
  place: MeshPlace;
  mesh: Mesh;
}

export interface LoadedMeshOptions {
  /** Tag of the unique prefix. */
  tag: string;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  /** The SDK's call timeout. */
  timeoutMs: number;
}

/**
 * Starts a nats-server, a registry process and the SDK (2 retries) on a fresh prefix; the agents
 * are the scenario's. What started is stopped again when a later step fails.
 */
export async function startLoadedMesh(o: LoadedMeshOptions): Promise<LoadedMesh> {
  const server = await startNatsServer();
  try {
    const place = { servers: server.url, prefix: uniquePrefix(o.tag), heartbeatMs: o.heartbeatMs };
    await startRegistryProcess(place, { heartbeatTimeoutMs: o.heartbeatTimeoutMs });
    const mesh = await connectMesh({
      servers: server.url,
      prefix: place.prefix,
      timeoutMs: o.timeoutMs,
      retries: 2,
    });
    return { server, place, mesh };
  } catch (err) {
    await stopLoadedMesh({ server });
    throw err;
  }
}

/** Kills every process the scenario started, then closes the SDK and stops the server. */
export async function stopLoadedMesh(m: Partial<LoadedMesh> | undefined): Promise<void> {
  await killAllProcesses();
  await cleanup(m?.server, m?.mesh);
}

/** The ids of `agents`, sorted and joined: what {@link viewIds} shows when it holds exactly them. */
export function idsOf(agents: readonly { id: string }[]): string {
  return agents
    .map((a) => a.id)
    .sort()
    .join();
}

/** The ids of service `svc` in the SDK's view (only the ready ones with `ready`), sorted and joined. */
export function viewIds(mesh: Mesh, { ready = false } = {}): string {
  return idsOf(mesh.instances("svc").filter((r) => !ready || r.status === "ready"));
}

/** Waits until the SDK's view holds exactly `agents`, all ready; throws after 15 s. */
export async function waitVisible(mesh: Mesh, agents: readonly { id: string }[]): Promise<void> {
  const ids = idsOf(agents);
  if (!(await waitUntil(() => viewIds(mesh, { ready: true }) === ids, { timeoutMs: 15_000 }))) {
    throw new Error(`presence never showed exactly ${ids}`);
  }
}
