// The SDK in ten lines: calls into a running mesh (npm start). Run: node examples/sdk.mjs
import { connectMesh } from "@natsmesh/sdk";

const mesh = await connectMesh(); // NATS_URL and MESH_PREFIX, else nats://127.0.0.1:4222 and "mesh"
const { greeting } = await mesh.request("greeter", "hello", { name: "SDK" }, { timeout: 2000 });
console.log(greeting);
const echoed = await mesh.request("echo", "say", { n: 1 }, { balance: "weighted", retries: 2 });
console.log(echoed);
await mesh.close();
