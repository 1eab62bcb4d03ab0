import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { createAccount, createOperator, createUser, type KeyPair } from "@nats-io/nkeys";
import { type Agent, startAgent } from "@natsmesh/agent";
import { isMeshError } from "@natsmesh/protocol";
import { type Registry, startRegistry } from "@natsmesh/registry";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import { cleanup, startNatsServer, waitUntil } from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AGENT_INBOX_PREFIXES,
  type PermissionedNats,
  PREFIX,
  provision,
  ROLES,
  startPermissionedNats,
  violations,
} from "./nats-permissions.js";

// NATS credentials and inbox prefixes in natsmesh's own options: registry, agent and SDK open
// their connections as the users of docker/nats/permissions.conf (not handed a connection, as
// test/permissions.test.ts does), and do their jobs under it. Then each other kind of
// credentials against a server that takes it: a token, an nkey seed file, a .creds file.

let nats: PermissionedNats;
let registry: Registry;
let agent: Agent;
let mesh: Mesh;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "natsmesh-nats-creds-"));
  nats = await startPermissionedNats();
  await provision(await nats.connect("admin"));
  registry = await startRegistry({
    servers: nats.server.url,
    prefix: PREFIX,
    credentials: nats.credentials("registry"),
    inboxPrefix: ROLES.registry.inbox,
    heartbeatTimeoutMs: 1500,
  });
  agent = await startAgent({
    servers: nats.server.url,
    prefix: PREFIX,
    service: "billing",
    credentials: nats.credentials("agent"),
    inboxPrefix: ROLES.agent.inbox,
    inboxPrefixes: [...AGENT_INBOX_PREFIXES],
    heartbeatMs: 500,
    methods: { charge: (p: unknown) => ({ charged: p }) },
  });
  mesh = await connectMesh({
    servers: nats.server.url,
    prefix: PREFIX,
    credentials: nats.credentials("caller"),
    inboxPrefix: ROLES.caller.inbox,
  });
});
afterAll(async () => {
  await cleanup(mesh, agent, registry, nats);
  await rm(dir, { recursive: true, force: true });
});

// Decentralized auth, as `nsc` sets it up, minted here: NATS JWTs are ordinary JWTs signed with
// the issuer's nkey (alg `ed25519-nkey`); `jti` is the base32 SHA-256 of the claims without it.
const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function base32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return bits > 0 ? out + BASE32[(value << (5 - bits)) & 31] : out;
}

function natsJwt(issuer: KeyPair, subject: KeyPair, nats: Record<string, unknown>): string {
  const claims = {
    jti: "",
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name: subject.getPublicKey().slice(0, 8),
    sub: subject.getPublicKey(),
    nats: { ...nats, version: 2 },
  };
  claims.jti = base32(createHash("sha256").update(JSON.stringify(claims)).digest());
  const b64 = (text: string) => Buffer.from(text).toString("base64url");
  const signed = `${b64(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" }))}.${b64(JSON.stringify(claims))}`;
  return `${signed}.${Buffer.from(issuer.sign(new TextEncoder().encode(signed))).toString("base64url")}`;
}

const UNLIMITED = { subs: -1, data: -1, payload: -1 };

function operatorJwt(op: KeyPair): string {
  return natsJwt(op, op, { type: "operator" });
}

function accountJwt(op: KeyPair, account: KeyPair): string {
  const limits = { ...UNLIMITED, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
  return natsJwt(op, account, { type: "account", limits });
}

/** A `.creds` file as `nsc` writes it: the user's JWT, then its seed. */
function credsFile(account: KeyPair, user: KeyPair): string {
  const jwt = natsJwt(account, user, { type: "user", pub: {}, sub: {}, ...UNLIMITED });
  return [
    "-----BEGIN NATS USER JWT-----",
    jwt,
    "------END NATS USER JWT------",
    "",
    "-----BEGIN USER NKEY SEED-----",
    new TextDecoder().decode(user.getSeed()),
    "------END USER NKEY SEED------",
    "",
  ].join("\n");
}

describe("processes connecting as the permission file's users", () => {
  it("announce, keep presence and answer calls by queue and by presence", async () => {
    const refused = [registry, agent, mesh].map((p) => violations(p.connection));
    expect(
      await waitUntil(() => mesh.instances("billing").some((i) => i.id === agent.id), {
        timeoutMs: 10_000,
      }),
    ).toBe(true);
    expect(await mesh.request("billing", "charge", 1)).toEqual({ charged: 1 });
    expect(await mesh.request("billing", "charge", 2, { balance: "weighted" })).toEqual({
      charged: 2,
    });
    expect(registry.isLeader).toBe(true);
    expect(agent.stats().droppedReplies).toBe(0);
    for (const p of [registry, agent, mesh]) await p.connection.flush();
    expect(refused).toEqual([[], [], []]);
  });

  it("leave the agent's user unable to publish to $KV or the JetStream API", async () => {
    const denied = violations(agent.connection);
    const subjects = [
      `$KV.${PREFIX}_presence.billing.${agent.id}`,
      `$JS.API.STREAM.PURGE.KV_${PREFIX}_presence`,
      `$JS.API.STREAM.DELETE.KV_${PREFIX}_registry`,
    ];
    for (const s of subjects) agent.connection.publish(s, "{}");
    await waitUntil(() => denied.length >= subjects.length, { timeoutMs: 5000 });
    expect([...denied].sort()).toEqual(subjects.map((s) => `publish ${s}`).sort());
  });

  it("refuse a wrong password at start, without printing it", async () => {
    const password = "pWrongButSecret7";
    const err = await startAgent({
      servers: nats.server.url,
      prefix: PREFIX,
      service: "billing",
      credentials: { user: ROLES.agent.user, password },
      inboxPrefix: ROLES.agent.inbox,
      methods: { charge: () => 1 },
      logger: (await import("pino")).pino({ level: "silent" }),
    }).catch((e: unknown) => e);
    expect((err as Error).name).toBe("AuthorizationError");
    expect(inspect(err, { depth: 10 })).not.toContain(password);
  });

  it("with the default inbox prefix, the caller's user cannot get replies", async () => {
    // The file gives checkout only _INBOX_checkout.>: without inboxPrefix its reply
    // subscription is refused, so the option is what makes calls work.
    const plain = await connectMesh({
      servers: nats.server.url,
      prefix: PREFIX,
      credentials: nats.credentials("caller"),
      presence: false,
      timeoutMs: 1500,
    });
    try {
      const out = await plain.request("billing", "charge", 3).catch((e: unknown) => e);
      expect(isMeshError(out) && out.code).toBe("DEADLINE_EXCEEDED");
    } finally {
      await plain.close();
    }
  });
});

describe("other kinds of NATS credentials", () => {
  it("a token, from the option and from NATS_TOKEN", async () => {
    const token = `t${Date.now().toString(36)}secret`;
    const conf = join(dir, "token.conf");
    await writeFile(conf, "authorization { token: $MESH_TEST_NATS_TOKEN }\n");
    await using server = await startNatsServer({
      runtime: "process",
      configFile: conf,
      env: { MESH_TEST_NATS_TOKEN: token },
    });
    await using withOption = await connectMesh({
      servers: server.url,
      credentials: { token },
      presence: false,
    });
    await withOption.connection.flush();
    const saved = process.env.NATS_TOKEN;
    process.env.NATS_TOKEN = token;
    try {
      await using fromEnv = await connectMesh({ servers: server.url, presence: false });
      await fromEnv.connection.flush();
    } finally {
      if (saved === undefined) delete process.env.NATS_TOKEN;
      else process.env.NATS_TOKEN = saved;
    }
    const wrong = await connectMesh({
      servers: server.url,
      credentials: { token: "nope" },
      presence: false,
    }).catch((e: unknown) => e);
    expect((wrong as Error).name).toBe("AuthorizationError");
  });

  it("an nkey seed file, read at connect", async () => {
    const user = createUser();
    const conf = join(dir, "nkey.conf");
    await writeFile(conf, `authorization { users = [ { nkey: ${user.getPublicKey()} } ] }\n`);
    const seed = join(dir, "user.nk");
    await writeFile(seed, `${new TextDecoder().decode(user.getSeed())}\n`);
    await using server = await startNatsServer({ runtime: "process", configFile: conf });
    await using withSeed = await connectMesh({
      servers: server.url,
      credentials: { nkeyFile: seed },
      presence: false,
    });
    await withSeed.connection.flush();
    const other = join(dir, "other.nk");
    await writeFile(other, new TextDecoder().decode(createUser().getSeed()));
    const refused = await connectMesh({
      servers: server.url,
      credentials: { nkeyFile: other },
      presence: false,
    }).catch((e: unknown) => e);
    expect((refused as Error).name).toBe("AuthorizationError");
  });

  it("a .creds file (user JWT and seed) against a server that trusts an operator", async () => {
    const op = createOperator();
    const account = createAccount();
    const user = createUser();
    const conf = join(dir, "operator.conf");
    await writeFile(
      conf,
      [
        `operator: ${operatorJwt(op)}`,
        "resolver: MEMORY",
        `resolver_preload: { ${account.getPublicKey()}: ${accountJwt(op, account)} }`,
        "",
      ].join("\n"),
    );
    const creds = join(dir, "user.creds");
    await writeFile(creds, credsFile(account, user));
    await using server = await startNatsServer({
      runtime: "process",
      configFile: conf,
      jetstream: false,
    });
    await using withCreds = await connectMesh({
      servers: server.url,
      credentials: { credsFile: creds },
      presence: false,
    });
    await withCreds.connection.flush();
    const saved = process.env.NATS_CREDS;
    process.env.NATS_CREDS = creds;
    try {
      await using fromEnv = await connectMesh({ servers: server.url, presence: false });
      await fromEnv.connection.flush();
    } finally {
      if (saved === undefined) delete process.env.NATS_CREDS;
      else process.env.NATS_CREDS = saved;
    }
    // A user signed by an account the operator never signed is refused.
    const stranger = join(dir, "stranger.creds");
    await writeFile(stranger, credsFile(createAccount(), createUser()));
    const refused = await connectMesh({
      servers: server.url,
      credentials: { credsFile: stranger },
      presence: false,
    }).catch((e: unknown) => e);
    expect((refused as Error).name).toBe("AuthorizationError");
  });
});
