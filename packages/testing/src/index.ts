/**
 * Test helpers for natsmesh: real `nats-server` processes (or Testcontainers containers),
 * single or clustered, with their own ports and JetStream stores, never left running.
 *
 * @module
 */
export type { NatsCluster, NatsClusterOptions } from "./cluster.js";
export { DEFAULT_NATS_CLUSTER_SIZE, startNatsCluster } from "./cluster.js";
export type { NatsTestingErrorCode } from "./errors.js";
export { NATS_TESTING_ERROR_CODES, NatsTestingError } from "./errors.js";
export { heapAfterGcMiB } from "./heap.js";
export type { NatsServer } from "./nats-server.js";
export { startNatsServer } from "./nats-server.js";
export type { ContainerNetwork, NatsRuntime, NatsServerOptions } from "./options.js";
export { CONTAINER_NETWORKS, DEFAULT_NATS_SERVER_OPTIONS, NATS_RUNTIMES } from "./options.js";
export { freePorts } from "./ports.js";
export { floodRecord, type PresenceFloodOptions, presenceFlood } from "./presence-flood.js";
export {
  createPresenceBucket,
  forgedRecord,
  instanceRecord,
  putRecord,
  TEST_RECORD_STARTED_AT,
} from "./presence-records.js";
export { type Cleanable, cleanup, type SetupOptions, setup, type TestSetup } from "./setup.js";
export {
  type Fixture,
  killAllProcesses,
  type ProcessResult,
  runProcess,
  type SpawnProcessOptions,
  spawnProcess,
  startFixture,
  TestProcess,
  type WaitForOptions,
} from "./test-process.js";
export { uniquePrefix } from "./unique-prefix.js";
export {
  canConnect,
  type UntilOptions,
  until,
  type WaitUntilOptions,
  waitUntil,
} from "./wait.js";
