import type { Mesh } from "@natsmesh/sdk";
import { readPresence } from "@natsmesh/sdk/internal";

/**
 * Waits, at most `ms`, until `mesh`'s presence view holds every instance of `service` that the
 * presence bucket holds now. The SDK loads its view in the background, and a first call that
 * picks an instance (a strategy other than `queue`, a version filter) made before it has
 * loaded would find none; the CLI makes exactly such first calls. Never throws: a bucket that
 * cannot be read leaves the call to say what is wrong.
 */
export async function awaitPresence(
  mesh: Mesh,
  prefix: string,
  service: string,
  ms: number,
): Promise<void> {
  const signal = AbortSignal.timeout(ms);
  const records = await readPresence(mesh.connection, { prefix, service, timeoutMs: ms }).catch(
    () => undefined,
  );
  const wanted = new Set((records ?? []).map((r) => r.id));
  const loaded = () =>
    mesh.instances(service).filter((r) => wanted.has(r.id)).length === wanted.size;
  if (loaded() || signal.aborted) return;
  try {
    for await (const _ of mesh.watch(service, { signal })) if (loaded()) return;
  } catch {
    // The watch ends with the signal or the mesh: either way, the call goes ahead.
  }
}
