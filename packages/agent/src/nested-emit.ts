import type { NestedEmitOptions, NestedMesh } from "./options.js";

/**
 * `ctx.mesh.emit` of a request or event context: the mesh's own `emit` with the handler's trace
 * headers and signal, so the event joins the trace of the work that caused it.
 */
export function nestedEmit(
  mesh: NestedMesh,
  trace: () => Record<string, string>,
  signal: () => AbortSignal,
): NonNullable<NestedMesh["emit"]> {
  return (event, payload, options: NestedEmitOptions = {}) => {
    if (mesh.emit === undefined) {
      throw new TypeError("ctx.mesh.emit needs the agent's `mesh` option to be an SDK mesh");
    }
    return mesh.emit(event, payload, {
      ...options,
      signal: options.signal ?? signal(),
      headers: { ...trace(), ...options.headers },
    });
  };
}
