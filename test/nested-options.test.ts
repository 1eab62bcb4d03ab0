import type { NestedMesh, NestedRequestOptions, RequestContext } from "@natsmesh/agent";
import type { Mesh, RequestOptions } from "@natsmesh/sdk";
import { describe, expect, expectTypeOf, it } from "vitest";

// The agent types nested calls without importing the SDK; these checks run in `npm run
// typecheck` (tsc), which fails when the two option types drift apart.
describe("nested call options", () => {
  it("are exactly the SDK's request options", () => {
    expectTypeOf<NestedRequestOptions>().toEqualTypeOf<RequestOptions>();
    expectTypeOf<Mesh>().toExtend<NestedMesh>();
  });

  it("refuse a misspelt option at compile time", () => {
    const options = (ctx: RequestContext) =>
      // @ts-expect-error: `timout` is not an option; an index signature would have let it through.
      ctx.mesh.request("echo", "say", null, { timout: 5 });
    expect(typeof options).toBe("function");
  });
});
