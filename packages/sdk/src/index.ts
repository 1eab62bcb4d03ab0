/**
 * The natsmesh SDK: request/reply calls to mesh services with balancing, retries, deadlines
 * and cancellation, over one multiplexed reply subscription per connection.
 *
 * @module
 */

export { generateKeyPair, issueToken, MeshError, type MeshErrorCode } from "@natsmesh/protocol";
export { connectMesh, type Mesh } from "./mesh.js";
export { type Balance, MESH_DEFAULTS, type MeshOptions, type RequestOptions } from "./options.js";
