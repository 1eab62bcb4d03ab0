import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

// What each package's main entry exports, by name. A name that appears or disappears here is a
// change of a public API: make it on purpose, and update this list and the docs with it.
// `values` exist at run time; `types` only for TypeScript.
const PUBLIC_API = {
  protocol: {
    values: [
      "ContentType",
      "DEFAULT_AUDIENCE",
      "DUPLICATE_WINDOW_MS",
      "DEFAULT_PREFIX",
      "DEFAULT_PRESENCE_QUOTAS",
      "DEFAULT_WEIGHT",
      "ErrorCodes",
      "EventMode",
      "Header",
      "InstanceStatus",
      "JWKS_KEY",
      "KeyAlgorithm",
      "MAX_EVENT_LENGTH",
      "MAX_EVENT_TOKENS",
      "LATENCY_BUCKETS",
      "LATENCY_OVERFLOW_US",
      "MAX_NAME_LENGTH",
      "MeshError",
      "OTHER_ERRORS",
      "PresenceKeys",
      "PresenceLimits",
      "QUEUE_GROUP",
      "SignatureProblem",
      "StatsLimits",
      "TokenAlgorithm",
      "TokenRejection",
      "VERIFIER_DEFAULTS",
      "assertJwks",
      "canonicalRecord",
      "codecForContentType",
      "codecs",
      "createPresenceSigner",
      "createVerifier",
      "deadLetterStream",
      "errorFromReply",
      "errorReply",
      "eventMatches",
      "eventStream",
      "generateKeyPair",
      "isEventMode",
      "isMeshError",
      "isValidEventName",
      "isValidEventPattern",
      "isValidName",
      "issueToken",
      "parseDeadLetterSubject",
      "parseEventSubject",
      "latencyBucket",
      "latencyBucketLower",
      "latencyBucketUpper",
      "latencyQuantile",
      "parsePresenceEntry",
      "parsePresenceKey",
      "parsePresenceMessage",
      "parseScope",
      "parseStatsData",
      "parseSubject",
      "patternId",
      "presenceBucket",
      "presenceKey",
      "presenceSigningInput",
      "registryBucket",
      "scopeAllows",
      "scopeAllowsAnnounce",
      "scopeAllowsEmit",
      "scopeAllowsStats",
      "subjects",
      "validateInstanceRecord",
    ],
    types: [
      "Codec",
      "CodecName",
      "DownMessage",
      "EndpointStatsData",
      "ErrorBody",
      "EventSubscription",
      "GenerateKeyPairOptions",
      "HeaderName",
      "HeartbeatMessage",
      "InstanceRecord",
      "IssueTokenOptions",
      "JsonWebKeySet",
      "MeshErrorCode",
      "MeshErrorOptions",
      "MeshKeyPair",
      "NatsCredentials",
      "ParsedStatsData",
      "ParsedSubject",
      "PresenceEntryOptions",
      "PresenceMessage",
      "PresenceQuotas",
      "PresenceSignature",
      "PresenceSigner",
      "Subjects",
      "TokenVerifier",
      "TokenVerifierOptions",
      "UpMessage",
      "Validation",
      "VerifiedToken",
    ],
  },
  agent: {
    values: [
      "AGENT_DEFAULTS",
      "EVENT_DEFAULTS",
      "MeshError",
      "natsmeshMetricProducer",
      "startAgent",
    ],
    types: [
      "Agent",
      "AgentAuthOptions",
      "AgentMetricsOptions",
      "AgentOptions",
      "AgentStats",
      "AgentUpdate",
      "CallerClaims",
      "EventContext",
      "EventDefinition",
      "EventHandler",
      "EventInfo",
      "EventMode",
      "EventStreamOptions",
      "EventSubscription",
      "Handler",
      "InstanceRecord",
      "InstanceStatus",
      "MethodDefinition",
      "NatsCredentials",
      "NestedEmitOptions",
      "NestedMesh",
      "NestedRequestOptions",
      "RequestContext",
      "StartFrom",
      "TokenSource",
    ],
  },
  sdk: {
    values: ["Balance", "MESH_DEFAULTS", "MeshError", "connectMesh", "natsmeshMetricProducer"],
    types: [
      "BroadcastOptions",
      "CodecName",
      "EmitOptions",
      "EmitResult",
      "EventStreamOptions",
      "InstanceFilter",
      "InstanceRecord",
      "Mesh",
      "MeshErrorCode",
      "MeshOptions",
      "NatsCredentials",
      "PresenceEvent",
      "PresenceOptions",
      "PresenceQuotas",
      "PresenceStats",
      "ReadyOptions",
      "RequestOptions",
      "TokenSource",
      "WatchOptions",
    ],
  },
  registry: {
    values: ["LEADER_KEY", "MeshError", "REGISTRY_DEFAULTS", "startRegistry"],
    types: [
      "InstanceRecord",
      "LeaseRecord",
      "NatsCredentials",
      "PresenceQuotas",
      "Registry",
      "RegistryAuthOptions",
      "RegistryDashboardOptions",
      "RegistryHttpOptions",
      "RegistryOptions",
      "RegistryStats",
    ],
  },
  dashboard: {
    values: [
      "DASHBOARD_DEFAULTS",
      "PresenceFeed",
      "createDashboard",
      "dashboardUrl",
      "serveDashboard",
    ],
    types: [
      "Dashboard",
      "DashboardLogger",
      "DashboardOptions",
      "DashboardServer",
      "DashboardServerOptions",
      "DashboardSettings",
      "DashboardState",
      "FeedEntry",
      "InstanceRate",
      "InstanceRecord",
      "NatsState",
      "PresenceChange",
      "PresenceSource",
      "ServicePoint",
      "ServiceTraffic",
      "StatsEvent",
      "StatsState",
      "TokenSource",
    ],
  },
  cli: {
    values: ["CliError", "CliErrorCode", "ExitCode", "main"],
    types: ["GlobalOptions", "Io", "LogLevel", "OutStream"],
  },
  testing: {
    values: [
      "CONTAINER_NETWORKS",
      "DEFAULT_NATS_CLUSTER_SIZE",
      "DEFAULT_NATS_SERVER_OPTIONS",
      "NATS_RUNTIMES",
      "NATS_TESTING_ERROR_CODES",
      "NatsTestingError",
      "TestProcess",
      "TEST_RECORD_STARTED_AT",
      "canConnect",
      "cleanup",
      "createPresenceBucket",
      "floodRecord",
      "freePorts",
      "heapAfterGcMiB",
      "instanceRecord",
      "killAllProcesses",
      "presenceFlood",
      "putRecord",
      "runProcess",
      "setup",
      "spawnProcess",
      "startFixture",
      "startNatsCluster",
      "startNatsServer",
      "uniquePrefix",
      "until",
      "waitUntil",
    ],
    types: [
      "Cleanable",
      "ContainerNetwork",
      "Fixture",
      "NatsCluster",
      "NatsClusterOptions",
      "NatsRuntime",
      "NatsServer",
      "NatsServerOptions",
      "NatsTestingErrorCode",
      "PresenceFloodOptions",
      "ProcessResult",
      "SetupOptions",
      "SpawnProcessOptions",
      "TestSetup",
      "UntilOptions",
      "WaitForOptions",
      "WaitUntilOptions",
    ],
  },
} as const;

type Package = keyof typeof PUBLIC_API;
const PACKAGES = Object.keys(PUBLIC_API) as Package[];

/** Every name the built declaration entry of each package exports, types included. */
function declaredExports(): Map<Package, string[]> {
  const files = PACKAGES.map((p) =>
    fileURLToPath(new URL(`../packages/${p}/dist/index.d.ts`, import.meta.url)),
  );
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  });
  const checker = program.getTypeChecker();
  return new Map(
    PACKAGES.map((p, i) => {
      const source = program.getSourceFile(files[i]!);
      const module = source === undefined ? undefined : checker.getSymbolAtLocation(source);
      if (module === undefined) throw new Error(`cannot read ${files[i]}; build first`);
      return [p, checker.getExportsOfModule(module).map((s) => s.name)];
    }),
  );
}

describe("public API", () => {
  const declared = declaredExports();

  it.each(PACKAGES)("@natsmesh/%s exports exactly its listed names", async (p) => {
    const runtime = Object.keys(await import(`@natsmesh/${p}`)).sort();
    const types = declared
      .get(p)!
      .filter((name) => !runtime.includes(name))
      .sort();
    expect({ values: runtime, types }).toEqual({
      values: [...PUBLIC_API[p].values].sort(),
      types: [...PUBLIC_API[p].types].sort(),
    });
  });

  it("the SDK leaves token issuing to @natsmesh/protocol", async () => {
    const sdk = await import("@natsmesh/sdk");
    expect(sdk).not.toHaveProperty("issueToken");
    expect(sdk).not.toHaveProperty("generateKeyPair");
  });
});
