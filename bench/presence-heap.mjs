// Measures the SDK heap of a presence view with N instances (run with --expose-gc).
import { connectMesh } from "@natsmesh/sdk";

const [url, prefix, count] = process.argv.slice(2);
const settle = () => {
  for (let i = 0; i < 4; i++) globalThis.gc();
  return process.memoryUsage().heapUsed;
};
const before = settle();
const mesh = await connectMesh({ servers: url, prefix });
const deadline = Date.now() + 60_000;
while (mesh.instances().length < Number(count) && Date.now() < deadline)
  await new Promise((r) => setTimeout(r, 50));
const loaded = mesh.instances().length;
const after = settle();
process.send?.({ loaded, heapBytes: after - before });
await mesh.close();
