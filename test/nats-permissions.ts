import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { type NatsConnection, PermissionViolationError } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import {
  type JsonWebKeySet,
  JWKS_KEY,
  type NatsCredentials,
  registryBucket,
} from "@natsmesh/protocol";
import { ensureEventStreams, resolveEventStreamOptions } from "@natsmesh/protocol/internal";
import { type NatsServer, startNatsServer } from "@natsmesh/testing";

// docker/nats/permissions.conf, run as it is by a test server: the users it defines, each with a
// fresh password and the inbox prefix the file's comments give it.

const ROOT = new URL("..", import.meta.url).pathname;
/** The shipped permission set. */
export const PERMISSIONS_FILE = join(ROOT, "docker/nats/permissions.conf");
/** The mesh prefix the file is written for. */
export const PREFIX = "mesh";

/** The file's users: NATS user, the variable holding its password, its inbox prefix. */
export const ROLES = {
  agent: { user: "billing-agent", password: "BILLING_AGENT_PASSWORD", inbox: "_INBOX_billing" },
  caller: { user: "checkout", password: "CHECKOUT_PASSWORD", inbox: "_INBOX_checkout" },
  registry: { user: "registry", password: "REGISTRY_PASSWORD", inbox: "_INBOX_registry" },
  dashboard: { user: "dashboard", password: "DASHBOARD_PASSWORD", inbox: "_INBOX_dashboard" },
  admin: { user: "admin", password: "ADMIN_PASSWORD", inbox: "_INBOX_admin" },
  echo: { user: "echo-agent", password: "ECHO_AGENT_PASSWORD", inbox: "_INBOX_echo" },
  greeter: { user: "greeter-agent", password: "GREETER_AGENT_PASSWORD", inbox: "_INBOX_greeter" },
  slow: { user: "slow-agent", password: "SLOW_AGENT_PASSWORD", inbox: "_INBOX_slow" },
  exampleCaller: { user: "caller", password: "CALLER_PASSWORD", inbox: "_INBOX_caller" },
} as const;
export type Role = keyof typeof ROLES;

/** Whom the billing agent answers: the inbox prefixes its user may publish to. */
export const AGENT_INBOX_PREFIXES = [
  ROLES.caller.inbox,
  ROLES.registry.inbox,
  ROLES.dashboard.inbox,
] as const;

/** A server running the shipped file, and connections as its users. */
export interface PermissionedNats extends AsyncDisposable {
  readonly server: NatsServer;
  /** Connects as `role`: its user, password and inbox prefix; closed by {@link dispose}. */
  connect(role: Role): Promise<NatsConnection>;
  /** The user and password of `role`, as natsmesh's `credentials` option takes them. */
  credentials(role: Role): NatsCredentials;
  /** Closes every connection made, then disposes of the server. */
  dispose(): Promise<void>;
}

/** Starts nats-server with the shipped permission file, passwords from its environment. */
export async function startPermissionedNats(): Promise<PermissionedNats> {
  // nats-server parses a variable's value as configuration: a leading digit would make it a number.
  const passwords = Object.fromEntries(
    Object.values(ROLES).map((r) => [r.password, `p${randomBytes(12).toString("hex")}`]),
  );
  const server = await startNatsServer({
    runtime: "process",
    configFile: PERMISSIONS_FILE,
    env: passwords,
  });
  const opened: NatsConnection[] = [];
  const dispose = async (): Promise<void> => {
    await Promise.allSettled(opened.map((nc) => nc.close()));
    await server.dispose();
  };
  return {
    server,
    async connect(role) {
      const r = ROLES[role];
      const nc = await connect({
        servers: server.url,
        user: r.user,
        pass: passwords[r.password],
        inboxPrefix: r.inbox,
        name: `test-${role}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 100,
      });
      opened.push(nc);
      return nc;
    },
    credentials(role) {
      const r = ROLES[role];
      return { user: r.user, password: passwords[r.password]! };
    },
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
}

/** What the operator does before anything runs: the event streams and the key set. */
export async function provision(admin: NatsConnection, jwks?: JsonWebKeySet): Promise<void> {
  const jsm = await jetstreamManager(admin);
  await ensureEventStreams(jsm, PREFIX, resolveEventStreamOptions(undefined));
  if (jwks !== undefined) await publishKeys(admin, jwks);
}

/** `natsmesh keys publish`: the key set into the registry bucket, created as a registry would. */
export async function publishKeys(admin: NatsConnection, jwks: JsonWebKeySet): Promise<void> {
  const kv = await new Kvm(admin).create(registryBucket(PREFIX), {
    history: 1,
    storage: "file",
    description: "natsmesh registry",
  });
  await kv.put(JWKS_KEY, JSON.stringify(jwks));
}

/**
 * Collects the permission violations the server reports to `nc` (`-ERR 'Permissions Violation
 * …'`), as `"publish <subject>"` or `"subscription <subject>"`.
 */
export function violations(nc: NatsConnection): string[] {
  const seen: string[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "error" && s.error instanceof PermissionViolationError) {
        seen.push(`${s.error.operation} ${s.error.subject}`);
      }
    }
  })();
  return seen;
}
