// An example service module: `greeter.hello` turns { name } into { greeting }, through a nested
// call to `echo.say`. A call made with ctx.mesh inherits the caller's deadline, cancellation and
// trace context, so the whole chain shares one time budget and one trace.
// Run it: natsmesh agent examples/services/greeter.mjs   (with echo running too)
import { MeshError } from "@natsmesh/agent";

/** Longest name greeted, in characters. */
const MAX_NAME = 200;

export default {
  service: "greeter",
  version: "1.0.0",
  methods: {
    hello: async (payload, ctx) => {
      const name = typeof payload === "object" && payload !== null ? payload.name : undefined;
      if (typeof name !== "string" || name.length === 0 || name.length > MAX_NAME) {
        // A MeshError reaches the caller with its code: BAD_REQUEST, not INTERNAL.
        throw new MeshError("BAD_REQUEST", `name must be a string of 1-${MAX_NAME} characters`);
      }
      const echoed = await ctx.mesh.request("echo", "say", { text: `Hello, ${name}!` });
      return { greeting: echoed.text };
    },
  },
};
