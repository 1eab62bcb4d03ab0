// The README's minimal example: one agent hosting `greeter.hello`, one SDK client calling it.
// Run: npm run build && node examples/hello.mjs   (NATS_URL defaults to nats://127.0.0.1:4222)
import { MeshError, startAgent } from "@natsmesh/agent";
import { connectMesh } from "@natsmesh/sdk";

const servers = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const prefix = process.env.MESH_PREFIX ?? "mesh";

const agent = await startAgent({
  servers,
  prefix,
  service: "greeter",
  version: "1.0.0",
  methods: {
    hello: async ({ name }, ctx) => {
      if (typeof name !== "string") throw new MeshError("BAD_REQUEST", "name must be a string");
      ctx.log.debug({ name }, "greeting");
      return { greeting: `Hello, ${name}!`, from: ctx.instance.id };
    },
  },
});

const mesh = await connectMesh({ servers, prefix });
const reply = await mesh.request("greeter", "hello", { name: "NATS" }, { timeout: 2000 });
console.log(reply.greeting);

try {
  await mesh.request("greeter", "hello", { name: 42 });
} catch (err) {
  console.log(`${err.code}: ${err.message}`);
}

await mesh.close();
await agent.stop();
