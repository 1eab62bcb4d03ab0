import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { type Agent, startAgent } from "@natsmesh/agent";
import {
  generateKeyPair,
  issueToken,
  type MeshKeyPair,
  presenceBucket,
  presenceKey,
} from "@natsmesh/protocol";
import { type RegistryOptions, startRegistry } from "@natsmesh/registry";
import { connectMesh } from "@natsmesh/sdk";
import {
  cleanup,
  forgedRecord,
  setup,
  type TestSetup,
  uniquePrefix,
  waitUntil,
} from "@natsmesh/testing";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";

// With auth on, records carry the registry's signature by default. A registry
// with auth and no signing key refuses to start unless told records may go unsigned, and the SDK
// takes the registries' public keys from MESH_PRESENCE_KEYS.

let t: TestSetup;
let keys: MeshKeyPair;
let dir: string;

beforeAll(async () => {
  t = await setup({ tag: "signdef" });
  keys = await generateKeyPair();
  dir = mkdtempSync(join(tmpdir(), "natsmesh-signdef-"));
});
afterEach(() => {
  vi.unstubAllEnvs();
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await cleanup(t);
});

/** The variables these tests set; cleared so the developer's shell changes nothing. */
function clearEnv(): void {
  for (const name of [
    "MESH_JWKS",
    "MESH_SIGNING_KEY",
    "MESH_UNSIGNED_PRESENCE",
    "MESH_PRESENCE_KEYS",
  ]) {
    vi.stubEnv(name, "");
  }
}

/** A registry on its own prefix, with log lines captured. */
async function registryWith(
  auth: RegistryOptions["auth"],
): Promise<{ prefix: string; lines: { level: number; msg: string }[]; start: Promise<unknown> }> {
  const prefix = uniquePrefix("signdef");
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const start = startRegistry({ servers: t.server.url, prefix, auth, logger });
  return { prefix, lines, start };
}

/** Whether the stream behind `<prefix>_presence` exists: a registry that started made it. */
async function bucketExists(prefix: string): Promise<boolean> {
  const jsm = await jetstreamManager(t.nc);
  return jsm.streams.info(`KV_${presenceBucket(prefix)}`).then(
    () => true,
    () => false,
  );
}

/** A registry's start, and the agent's record it writes, as stored. */
async function storedBy(
  auth: RegistryOptions["auth"],
): Promise<{ record: { sig?: { kid: string } }; warned: boolean }> {
  const { prefix, lines, start } = await registryWith(auth);
  const registry = (await start) as Awaited<ReturnType<typeof startRegistry>>;
  const agent = await startAgent({
    servers: t.server.url,
    prefix,
    service: "echo",
    token: await issueToken({ key: keys.privateJwk, sub: "echo", scope: "announce:echo" }),
    methods: { say: (p: unknown) => p },
  });
  try {
    const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
    let record: { sig?: { kid: string } } | undefined;
    await waitUntil(
      async () => {
        const e = await kv.get(presenceKey("echo", agent.id));
        record = e?.operation === "PUT" ? e.json() : undefined;
        return record !== undefined;
      },
      { timeoutMs: 10_000 },
    );
    expect(record).toBeDefined();
    const warned = lines.some(
      (l) => l.level === 40 && l.msg.startsWith("auth is on but records are unsigned"),
    );
    return { record: record!, warned };
  } finally {
    await cleanup(agent, registry);
  }
}

describe("a registry with auth signs records by default", () => {
  it("refuses to start without a signing key, saying what to set, before touching NATS", async () => {
    clearEnv();
    const { prefix, start } = await registryWith({ jwks: keys.jwks });
    const err = await start.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    const message = (err as Error).message;
    for (const what of ["auth.signingKey", "MESH_SIGNING_KEY", "presence.keys"]) {
      expect(message).toContain(what);
    }
    expect(message).toContain("MESH_PRESENCE_KEYS");
    expect(await bucketExists(prefix)).toBe(false);
  });

  it("refuses likewise when auth comes from MESH_JWKS", async () => {
    clearEnv();
    vi.stubEnv("MESH_JWKS", JSON.stringify(keys.jwks));
    const { start } = await registryWith(undefined);
    await expect(start).rejects.toBeInstanceOf(TypeError);
  });

  it("signs with auth.signingKey, or MESH_SIGNING_KEY (inline JSON or a file), without a warning", async () => {
    clearEnv();
    const option = await storedBy({ jwks: keys.jwks, signingKey: keys.privateJwk });
    expect([option.record.sig?.kid, option.warned]).toEqual([keys.kid, false]);
    vi.stubEnv("MESH_SIGNING_KEY", JSON.stringify(keys.privateJwk));
    const inline = await storedBy({ jwks: keys.jwks });
    expect(inline.record.sig?.kid).toBe(keys.kid);
    const file = join(dir, "presence.private.jwk.json");
    writeFileSync(file, JSON.stringify(keys.privateJwk), { mode: 0o600 });
    vi.stubEnv("MESH_SIGNING_KEY", file);
    const fromFile = await storedBy({ jwks: keys.jwks });
    expect(fromFile.record.sig?.kid).toBe(keys.kid);
  });

  it("auth.unsignedPresence: true opts out: records unsigned, and a warning says so", async () => {
    clearEnv();
    const { record, warned } = await storedBy({ jwks: keys.jwks, unsignedPresence: true });
    expect([record.sig, warned]).toEqual([undefined, true]);
  });

  it.each(["1", "true"])("MESH_UNSIGNED_PRESENCE=%s opts out too", async (value) => {
    clearEnv();
    vi.stubEnv("MESH_UNSIGNED_PRESENCE", value);
    const { record, warned } = await storedBy({ jwks: keys.jwks });
    expect([record.sig, warned]).toEqual([undefined, true]);
  });

  it("refuses any other MESH_UNSIGNED_PRESENCE, naming the variable", async () => {
    for (const value of ["yes", "0", "false", "TRUE"]) {
      clearEnv();
      vi.stubEnv("MESH_UNSIGNED_PRESENCE", value);
      const err = await startRegistry({
        servers: t.server.url,
        prefix: uniquePrefix("signdef"),
        auth: { jwks: keys.jwks },
      }).catch((e: unknown) => e);
      expect(err, value).toBeInstanceOf(TypeError);
      expect((err as Error).message, value).toContain("MESH_UNSIGNED_PRESENCE");
    }
  });

  it("refuses a key together with the opt-out, whichever way each is given", async () => {
    clearEnv();
    const both = [
      [{ jwks: keys.jwks, signingKey: keys.privateJwk, unsignedPresence: true }, {}],
      [{ jwks: keys.jwks, unsignedPresence: true }, { MESH_SIGNING_KEY: "k.json" }],
      [{ jwks: keys.jwks, signingKey: keys.privateJwk }, { MESH_UNSIGNED_PRESENCE: "1" }],
      [
        { jwks: keys.jwks },
        { MESH_SIGNING_KEY: JSON.stringify(keys.privateJwk), MESH_UNSIGNED_PRESENCE: "true" },
      ],
    ] as const;
    for (const [auth, env] of both) {
      clearEnv();
      for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
      await expect(
        startRegistry({ servers: t.server.url, prefix: uniquePrefix("signdef"), auth }),
      ).rejects.toBeInstanceOf(TypeError);
    }
  });

  it("asks for nothing without auth", async () => {
    clearEnv();
    vi.stubEnv("MESH_UNSIGNED_PRESENCE", "nonsense");
    const registry = await startRegistry({
      servers: t.server.url,
      prefix: uniquePrefix("signdef"),
      auth: false,
    });
    await registry.stop();
  });
});

describe("the SDK with MESH_PRESENCE_KEYS", () => {
  /** A signed record of a live agent, no registry left to repair the bucket, and a forgery in it. */
  async function forgedScene(): Promise<{ prefix: string; agent: Agent }> {
    clearEnv();
    const prefix = uniquePrefix("signdef");
    const registry = await startRegistry({
      servers: t.server.url,
      prefix,
      auth: { jwks: keys.jwks, signingKey: keys.privateJwk },
    });
    const agent = await startAgent({
      servers: t.server.url,
      prefix,
      service: "billing",
      token: await issueToken({ key: keys.privateJwk, sub: "b", scope: "announce:billing" }),
      methods: { pay: () => "real" },
    });
    const kv = await new Kvm(t.nc).open(presenceBucket(prefix));
    const live = await waitUntil(
      async () => (await kv.get(presenceKey("billing", agent.id)))?.operation === "PUT",
      { timeoutMs: 10_000 },
    );
    expect(live).toBe(true);
    // The leader would repair the forgery: the SDK's own check is what is tested here.
    await registry.stop();
    await kv.put(presenceKey("billing", "FAKE1"), JSON.stringify(forgedRecord(prefix, "FAKE1")));
    return { prefix, agent };
  }

  it("takes only signed records, the keys given as a file or inline JSON", async () => {
    const { prefix, agent } = await forgedScene();
    const file = join(dir, "presence-jwks.json");
    writeFileSync(file, JSON.stringify(keys.jwks));
    try {
      for (const value of [file, JSON.stringify(keys.jwks)]) {
        vi.stubEnv("MESH_PRESENCE_KEYS", value);
        await using mesh = await connectMesh({ servers: t.server.url, prefix });
        await mesh.ready({ service: "billing", timeout: 10_000 });
        expect(
          await waitUntil(() => mesh.presenceStats().unsigned === 1, { timeoutMs: 10_000 }),
        ).toBe(true);
        expect(mesh.instances("billing").map((r) => r.id)).toEqual([agent.id]);
        for (let i = 0; i < 20; i++) {
          expect(await mesh.request("billing", "pay", {}, { balance: "weighted" })).toBe("real");
        }
      }
      // Without the variable the forgery is taken: the keys are what keeps it out.
      vi.stubEnv("MESH_PRESENCE_KEYS", "");
      await using unchecked = await connectMesh({ servers: t.server.url, prefix });
      expect(
        await waitUntil(() => unchecked.instances("billing").length === 2, { timeoutMs: 10_000 }),
      ).toBe(true);
      // presence.keys given in code wins over the variable.
      vi.stubEnv("MESH_PRESENCE_KEYS", "kv");
      await using given = await connectMesh({
        servers: t.server.url,
        prefix,
        presence: { keys: keys.jwks },
      });
      await given.ready({ service: "billing", timeout: 10_000 });
      expect(given.instances("billing").map((r) => r.id)).toEqual([agent.id]);
    } finally {
      await agent.stop();
    }
  });

  it("refuses a value that is no key set, naming the variable, before connecting", async () => {
    clearEnv();
    for (const value of [
      "{not json",
      '{"keys":"no"}',
      join(dir, "missing.json"),
      dir,
      JSON.stringify(keys.privateJwk),
    ]) {
      vi.stubEnv("MESH_PRESENCE_KEYS", value);
      const err = await connectMesh({ servers: "nats://127.0.0.1:1" }).catch((e: unknown) => e);
      expect(err, value).toBeInstanceOf(TypeError);
      expect((err as Error).message, value).toContain("MESH_PRESENCE_KEYS");
    }
    // Over 256 KiB (valid JSON, padded): refused by size, as a key file or the KV key is.
    const big = JSON.stringify({ keys: [keys.jwks.keys[0]], pad: "x".repeat(256 * 1024) });
    vi.stubEnv("MESH_PRESENCE_KEYS", big);
    const err = await connectMesh({ servers: "nats://127.0.0.1:1" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toMatch(/MESH_PRESENCE_KEYS: .* larger than 262144 bytes/);
  });
});
