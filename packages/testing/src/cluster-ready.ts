import { waitUntil } from "./wait.js";

/** One node as the readiness check sees it. */
export interface ClusterNode {
  readonly name: string;
  readonly monitorPort: number;
  readonly running: boolean;
}

interface Jsz {
  meta_cluster?: { leader?: string; replicas?: { name: string; current?: boolean }[] };
}

interface Routez {
  routes?: { remote_id?: string }[];
}

/**
 * Waits until every running node is routed to every other running node, all agree on one
 * JetStream meta leader, and that leader sees every other running node as a current peer.
 * Uses the HTTP monitoring endpoints, so it needs no client connection or system account.
 * Resolves to a description of what was still missing, or undefined when ready.
 */
export async function waitForCluster(
  nodes: readonly ClusterNode[],
  timeoutMs: number,
): Promise<string | undefined> {
  let missing: string | undefined = "nothing checked yet";
  await waitUntil(
    async () => {
      missing = await clusterGap(nodes.filter((n) => n.running));
      return missing === undefined;
    },
    { timeoutMs, intervalMs: 100 },
  );
  return missing;
}

async function clusterGap(nodes: readonly ClusterNode[]): Promise<string | undefined> {
  if (nodes.length === 0) return "no node is running";
  const leaders = new Set<string>();
  for (const node of nodes) {
    const routez = await monitor<Routez>(node, "/routez");
    // Distinct remote servers, not routes: newer servers pool several routes per peer.
    const peers = new Set(routez?.routes?.map((r) => r.remote_id)).size;
    if (peers < nodes.length - 1) {
      return `${node.name} is routed to ${peers} of ${nodes.length - 1} peers`;
    }
    const leader = (await monitor<Jsz>(node, "/jsz"))?.meta_cluster?.leader;
    if (!leader) return `${node.name} knows no JetStream meta leader`;
    leaders.add(leader);
  }
  if (leaders.size > 1) return `nodes disagree on the meta leader: ${[...leaders].join(", ")}`;
  const [leaderName] = leaders;
  const leader = nodes.find((n) => n.name === leaderName);
  if (leader === undefined) return `meta leader ${leaderName} is not a running node`;
  const replicas = (await monitor<Jsz>(leader, "/jsz"))?.meta_cluster?.replicas ?? [];
  const current = replicas.filter(
    (r) => r.current === true && nodes.some((n) => n.name === r.name),
  );
  if (current.length < nodes.length - 1) {
    return `meta leader ${leaderName} has ${current.length} of ${nodes.length - 1} peers current`;
  }
  return undefined;
}

async function monitor<T>(node: ClusterNode, path: string): Promise<T | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${node.monitorPort}${path}`, {
      signal: AbortSignal.timeout(1_000),
    });
    return res.ok ? ((await res.json()) as T) : undefined;
  } catch {
    return undefined; // not up yet, or restarting
  }
}
