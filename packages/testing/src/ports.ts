import { readdir, readFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { join } from "node:path";

/** Ports a running nats-server reported in its ports file. */
export interface ReportedPorts {
  client: number;
  monitor?: number;
}

/**
 * Reserves `count` distinct free TCP ports on 127.0.0.1 by listening on port 0, all at once so
 * they differ, then releases them. For where a server cannot pick its own port (`-1`) and
 * report it: cluster ports every node must know before any node starts, or the ports a test
 * hands to processes and containers it configures through their environment.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve());
      });
    }
    return servers.map((server) => {
      const address = server.address();
      if (address === null || typeof address === "string") throw new Error("no TCP address");
      return address.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

/**
 * Reads the ports file nats-server writes into `--ports_file_dir` (`<exe>_<pid>.ports`,
 * JSON like `{"nats":["nats://127.0.0.1:4222"],"monitoring":["http://127.0.0.1:8222"]}`).
 * Resolves to undefined while the file is missing or incomplete.
 */
export async function readPortsFile(dir: string, pid: number): Promise<ReportedPorts | undefined> {
  const suffix = `_${pid}.ports`;
  const name = (await readdir(dir)).find((file) => file.endsWith(suffix));
  if (name === undefined) return undefined;
  let parsed: { nats?: string[]; monitoring?: string[] };
  try {
    parsed = JSON.parse(await readFile(join(dir, name), "utf8"));
  } catch {
    return undefined; // written but not yet complete
  }
  const client = portOf(parsed.nats?.[0]);
  if (client === undefined) return undefined;
  const monitor = portOf(parsed.monitoring?.[0]);
  return monitor === undefined ? { client } : { client, monitor };
}

function portOf(url: string | undefined): number | undefined {
  if (url === undefined) return undefined;
  const port = Number(new URL(url).port);
  return Number.isInteger(port) && port > 0 ? port : undefined;
}
