import { createPrivateKey, sign } from "node:crypto";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { type Agent, type RequestContext, startAgent } from "@natsmesh/agent";
import {
  generateKeyPair,
  Header,
  isMeshError,
  issueToken,
  JWKS_KEY,
  type MeshKeyPair,
  registryBucket,
} from "@natsmesh/protocol";
import { connectMesh, type Mesh } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup, uniquePrefix } from "@natsmesh/testing";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ISSUER = "https://auth.test";
let t: TestSetup;
let keys: MeshKeyPair;
let other: MeshKeyPair;
let agent: Agent;
let mesh: Mesh;
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

function token(scope: string, extra: Partial<Parameters<typeof issueToken>[0]> = {}) {
  return issueToken({ key: keys.privateJwk, sub: "alice", scope, issuer: ISSUER, ...extra });
}

async function failure(p: Promise<unknown>): Promise<{ code: string; reason?: string }> {
  try {
    await p;
  } catch (err) {
    if (!isMeshError(err)) throw err;
    return { code: err.code, reason: (err.data as { reason?: string } | undefined)?.reason };
  }
  throw new Error("call succeeded");
}

beforeAll(async () => {
  t = await setup({ tag: "auth" });
  keys = await generateKeyPair();
  other = await generateKeyPair({ alg: "ES256" });
  agent = await startAgent({
    servers: t.server.url,
    prefix: t.prefix,
    service: "billing",
    auth: { jwks: keys.jwks, issuer: ISSUER },
    methods: {
      charge: (_p: unknown, ctx: RequestContext) => ({
        sub: ctx.caller?.sub,
        scope: ctx.caller?.scope,
        tenant: ctx.caller?.tenant,
        jti: ctx.caller?.jti,
      }),
      audit: { handler: () => "audited", scope: "billing.write" },
    },
  });
  mesh = await connectMesh({ servers: t.server.url, prefix: t.prefix });
});
afterAll(() => cleanup(t, agent, mesh));

describe("calls with tokens", () => {
  it("accepts a valid token and hands the verified claims to the handler", async () => {
    const tok = await token("billing.*", { claims: { tenant: "t1" } });
    const out = await mesh.request<Record<string, unknown>>("billing", "charge", null, {
      token: tok,
    });
    expect(out).toMatchObject({ sub: "alice", scope: "billing.*", tenant: "t1" });
    expect(typeof out.jti).toBe("string");
  });

  it("uses the mesh's token function and a per-call token over it", async () => {
    let calls = 0;
    const viaFn = await connectMesh({
      servers: t.server.url,
      prefix: t.prefix,
      token: async () => {
        calls++;
        return token("billing.charge", { sub: "fn" });
      },
    });
    expect((await viaFn.request<{ sub: string }>("billing", "charge")).sub).toBe("fn");
    expect(
      (
        await viaFn.request<{ sub: string }>("billing", "charge", null, {
          token: await token("*", { sub: "own" }),
        })
      ).sub,
    ).toBe("own");
    expect(calls).toBe(1);
    await viaFn.close();
  });

  it("refuses a call without a token with UNAUTHENTICATED, also for a plain NATS client", async () => {
    expect(await failure(mesh.request("billing", "charge"))).toEqual({
      code: "UNAUTHENTICATED",
      reason: "missing",
    });
    const reply = await t.nc.request(`${t.prefix}.svc.billing.charge`, "{}", { timeout: 5000 });
    expect(reply.headers?.get(Header.ServiceErrorCode)).toBe("401");
    expect(reply.headers?.get(Header.MeshError)).toBe("UNAUTHENTICATED");
    const h = natsHeaders();
    h.set(Header.Authorization, "Basic YWxpY2U6c2VjcmV0");
    const basic = await t.nc.request(`${t.prefix}.svc.billing.charge`, "{}", {
      timeout: 5000,
      headers: h,
    });
    expect(basic.headers?.get(Header.MeshError)).toBe("UNAUTHENTICATED");
  });

  it.each([
    ["malformed", async () => "not.a.jwt"],
    ["too_long", async () => "x".repeat(9000)],
    ["expired", () => token("*", { ttl: -60 })],
    ["issuer", () => token("*", { issuer: "https://evil.test" })],
    ["audience", () => token("*", { audience: "other" })],
    [
      "unknown_kid",
      () => issueToken({ key: other.privateJwk, sub: "a", scope: "*", issuer: ISSUER }),
    ],
    [
      "signature",
      async () => {
        const [h, , sig] = (await token("billing.charge")).split(".");
        return `${h}.${b64({ sub: "root", scope: "*", aud: "natsmesh", iss: ISSUER, exp: now() + 60 })}.${sig}`;
      },
    ],
    [
      "algorithm",
      async () =>
        `${b64({ alg: "none" })}.${b64({ sub: "root", scope: "*", aud: "natsmesh", iss: ISSUER, exp: now() + 60 })}.`,
    ],
    [
      "algorithm",
      () =>
        new SignJWT({ scope: "*" })
          .setProtectedHeader({ alg: "HS256", kid: keys.kid })
          .setSubject("root")
          .setAudience("natsmesh")
          .setIssuer(ISSUER)
          .setExpirationTime(now() + 60)
          .sign(new TextEncoder().encode(JSON.stringify(keys.publicJwk))),
    ],
    [
      "not_yet_valid",
      () =>
        new SignJWT({ scope: "*" })
          .setProtectedHeader({ alg: "EdDSA", kid: keys.kid })
          .setSubject("a")
          .setAudience("natsmesh")
          .setIssuer(ISSUER)
          .setNotBefore(now() + 120)
          .setExpirationTime(now() + 600)
          .sign(keys.privateJwk),
    ],
  ])("refuses a token failing on %s with UNAUTHENTICATED", async (reason, make) => {
    const tok = await make();
    const result = await failure(mesh.request("billing", "charge", null, { token: tok }));
    expect(result.code).toBe("UNAUTHENTICATED");
    if (reason === "algorithm") expect(["algorithm", "malformed"]).toContain(result.reason);
    else expect(result.reason).toBe(reason);
  });

  it("checks the token before saying whether a method exists", async () => {
    expect((await failure(mesh.request("billing", "nope"))).code).toBe("UNAUTHENTICATED");
    expect(
      (await failure(mesh.request("billing", "nope", null, { token: await token("shipping.*") })))
        .code,
    ).toBe("FORBIDDEN");
    expect(
      (await failure(mesh.request("billing", "nope", null, { token: await token("billing.*") })))
        .code,
    ).toBe("NOT_FOUND");
  });

  it("accepts clock skew within 30 s", async () => {
    const tok = await token("*", { ttl: -10 });
    await expect(mesh.request("billing", "charge", null, { token: tok })).resolves.toBeDefined();
  });

  it("answers FORBIDDEN when no scope pattern matches, and honours a method's own scope", async () => {
    expect(
      await failure(
        mesh.request("billing", "charge", null, { token: await token("shipping.* *.read") }),
      ),
    ).toEqual({
      code: "FORBIDDEN",
      reason: undefined,
    });
    expect(
      await failure(
        mesh.request("billing", "audit", null, { token: await token("billing.audit") }),
      ),
    ).toMatchObject({ code: "FORBIDDEN" });
    expect(
      await mesh.request("billing", "audit", null, { token: await token("billing.write") }),
    ).toBe("audited");
    expect(await mesh.request("billing", "audit", null, { token: await token("*.write") })).toBe(
      "audited",
    );
  });

  it("accepts a token minted by another JWT implementation", async () => {
    const header = b64({ alg: "EdDSA", typ: "JWT", kid: keys.kid });
    const payload = b64({
      sub: "bob",
      scope: "billing.charge",
      aud: "natsmesh",
      iss: ISSUER,
      exp: now() + 60,
    });
    const key = createPrivateKey({ key: keys.privateJwk as never, format: "jwk" });
    const signature = sign(null, Buffer.from(`${header}.${payload}`), key).toString("base64url");
    const out = await mesh.request<{ sub: string }>("billing", "charge", null, {
      token: `${header}.${payload}.${signature}`,
    });
    expect(out.sub).toBe("bob");
  });

  it("refuses invalid auth options with TypeError", async () => {
    await expect(
      startAgent({ connection: t.nc, service: "x", methods: { a: () => 1 }, auth: {} }),
    ).rejects.toThrow(TypeError);
    await expect(
      startAgent({
        connection: t.nc,
        service: "x",
        methods: { a: () => 1 },
        auth: { jwks: "/nonexistent/jwks.json" },
      }),
    ).rejects.toThrow(TypeError);
    await expect(
      startAgent({
        connection: t.nc,
        service: "x",
        methods: { a: { handler: () => 1, scope: "no-dot" } },
      }),
    ).rejects.toThrow(TypeError);
  });
});

describe("discovery with auth", () => {
  it("answers PING and INFO with names only; closed answers nothing", async () => {
    const ping = await t.nc.request(`$SRV.PING.billing.${agent.id}`, "", { timeout: 2000 });
    expect(ping.json()).toMatchObject({ name: "billing", id: agent.id, metadata: {} });
    await using closed = await startAgent({
      connection: t.nc,
      prefix: t.prefix,
      service: "hidden",
      auth: { jwks: keys.jwks, discovery: "closed" },
      methods: { a: () => 1 },
    });
    await expect(
      t.nc.request(`$SRV.PING.hidden.${closed.id}`, "", { timeout: 300 }),
    ).rejects.toThrow();
    await expect(
      t.nc.request(`$SRV.STATS.hidden.${closed.id}`, "", { timeout: 300 }),
    ).rejects.toThrow();
  });

  interface StatsBody {
    type: string;
    name: string;
    id: string;
    endpoints: { name: string; data: unknown }[];
  }

  async function stats(authorization?: string) {
    const h = natsHeaders();
    if (authorization !== undefined) h.set(Header.Authorization, authorization);
    const msg = await t.nc.request(`$SRV.STATS.billing.${agent.id}`, "", {
      timeout: 2000,
      headers: h,
    });
    return { error: msg.headers?.get(Header.MeshError) ?? "", body: msg.json<StatsBody>() };
  }

  it("answers STATS only to a token holding stats:<service> or stats:*", async () => {
    expect(await stats()).toMatchObject({ error: "UNAUTHENTICATED" });
    expect(await stats("Bearer not.a.jwt")).toMatchObject({ error: "UNAUTHENTICATED" });
    // Calling rights, even `*`, are not the right to read stats.
    expect(await stats(`Bearer ${await token("*")}`)).toMatchObject({ error: "FORBIDDEN" });
    expect(await stats(`Bearer ${await token("stats:shipping")}`)).toMatchObject({
      error: "FORBIDDEN",
    });
    const forged = await issueToken({ key: other.privateJwk, sub: "x", scope: "stats:*" });
    expect(await stats(`Bearer ${forged}`)).toMatchObject({ error: "UNAUTHENTICATED" });
    for (const scope of ["stats:billing", "stats:*"]) {
      const ok = await stats(`Bearer ${await token(scope)}`);
      expect(ok.error).toBe("");
      expect(ok.body).toMatchObject({
        type: "io.nats.micro.v1.stats_response",
        name: "billing",
        id: agent.id,
      });
      const charge = ok.body.endpoints.find((e) => e.name === "charge");
      expect(charge?.data).toMatchObject({
        latency_us: expect.any(Array),
        errors: expect.any(Object),
      });
    }
  });
});

describe("key rotation without restarts", () => {
  it("follows a JWKS file: new keys work and a removed kid is refused within 2 s", async () => {
    const dir = mkdtempSync(join(tmpdir(), "natsmesh-jwks-"));
    const file = join(dir, "jwks.json");
    writeFileSync(file, JSON.stringify(keys.jwks));
    const p = uniquePrefix("authf");
    await using a = await startAgent({
      connection: t.nc,
      prefix: p,
      service: "rot",
      auth: { jwks: file },
      methods: { m: () => "ok" },
    });
    await using m = await connectMesh({ connection: t.nc, prefix: p });
    const oldToken = await issueToken({ key: keys.privateJwk, sub: "a", scope: "*" });
    const newToken = await issueToken({ key: other.privateJwk, sub: "a", scope: "*" });
    expect(await m.request("rot", "m", null, { token: oldToken })).toBe("ok");
    // An atomic replace, as deployment tools do it.
    writeFileSync(`${file}.tmp`, JSON.stringify(other.jwks));
    renameSync(`${file}.tmp`, file);
    await expect
      .poll(() => m.request("rot", "m", null, { token: newToken }).catch(() => "refused"), {
        timeout: 2000,
      })
      .toBe("ok");
    expect((await failure(m.request("rot", "m", null, { token: oldToken }))).reason).toBe(
      "unknown_kid",
    );
    expect(a.id).toBeDefined();
    rmSync(dir, { recursive: true, force: true });
  });

  it("follows the jwks key of the registry bucket", async () => {
    const p = uniquePrefix("authk");
    await using a = await startAgent({
      connection: t.nc,
      prefix: p,
      service: "rot",
      auth: { jwks: "kv" },
      methods: { m: () => "ok" },
    });
    await using m = await connectMesh({ connection: t.nc, prefix: p });
    const t1 = await issueToken({ key: keys.privateJwk, sub: "a", scope: "*" });
    const t2 = await issueToken({ key: other.privateJwk, sub: "a", scope: "*" });
    // No bucket yet: the agent has no key to check with, says so, and does not blame the token.
    expect(a.record.status).toBe("unready");
    expect((await failure(m.request("rot", "m", null, { token: t1 }))).code).toBe("UNAVAILABLE");
    const kv = await new Kvm(t.nc).create(registryBucket(p), { history: 1 });
    await kv.put(JWKS_KEY, JSON.stringify(keys.jwks));
    await expect
      .poll(() => m.request("rot", "m", null, { token: t1 }).catch(() => "refused"), {
        timeout: 2000,
      })
      .toBe("ok");
    expect(a.record.status).toBe("ready");
    await kv.put(JWKS_KEY, JSON.stringify(other.jwks));
    await expect
      .poll(() => m.request("rot", "m", null, { token: t2 }).catch(() => "refused"), {
        timeout: 2000,
      })
      .toBe("ok");
    expect((await failure(m.request("rot", "m", null, { token: t1 }))).reason).toBe("unknown_kid");
    // A value that is not a key set is refused; the current keys stay.
    await kv.put(JWKS_KEY, "{not json");
    await kv.put(JWKS_KEY, JSON.stringify({ keys: [keys.privateJwk] }));
    expect(await m.request("rot", "m", null, { token: t2 })).toBe("ok");
    expect(a.id).toBeDefined();
  });
});

describe("the agent's own token", () => {
  it("is sent on its presence messages", async () => {
    const p = uniquePrefix("autht");
    const own = await issueToken({ key: keys.privateJwk, sub: "agent", scope: "announce:rot" });
    const seen: string[] = [];
    const sub = t.nc.subscribe(`${p}.presence.*.*`, {
      callback: (_e, msg) => {
        seen.push(msg.headers?.get(Header.Authorization) ?? "");
      },
    });
    await t.nc.flush();
    await using a = await startAgent({
      connection: t.nc,
      prefix: p,
      service: "rot",
      token: own,
      heartbeatMs: 50,
      methods: { m: () => 1 },
    });
    await expect.poll(() => seen.length).toBeGreaterThanOrEqual(2);
    expect(new Set(seen)).toEqual(new Set([`Bearer ${own}`]));
    expect(a.id).toBeDefined();
    sub.unsubscribe();
  });
});

describe("configuration from the environment", () => {
  function withEnv<T>(vars: Record<string, string>, run: () => Promise<T>): Promise<T> {
    const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
    Object.assign(process.env, vars);
    return run().finally(() => {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });
  }

  it("reads MESH_JWKS, MESH_ISSUER and MESH_TOKEN when options omit them; auth: false wins", async () => {
    const p = uniquePrefix("authe");
    const good = await token("envsvc.m");
    await withEnv(
      { MESH_JWKS: JSON.stringify(keys.jwks), MESH_ISSUER: ISSUER, MESH_TOKEN: good },
      async () => {
        await using a = await startAgent({
          connection: t.nc,
          prefix: p,
          service: "envsvc",
          methods: { m: () => "ok" },
        });
        await using open = await startAgent({
          connection: t.nc,
          prefix: p,
          service: "opensvc",
          auth: false,
          methods: { m: () => "open" },
        });
        await using viaEnv = await connectMesh({ connection: t.nc, prefix: p });
        expect(await viaEnv.request("envsvc", "m")).toBe("ok");
        expect((await failure(mesh.request("envsvc", "m"))).code).toBe("UNAVAILABLE");
        await using anonymous = await connectMesh({
          connection: t.nc,
          prefix: p,
          token: "not-a-jwt",
        });
        expect((await failure(anonymous.request("envsvc", "m"))).code).toBe("UNAUTHENTICATED");
        expect(await anonymous.request("opensvc", "m")).toBe("open");
        expect(a.id && open.id).toBeDefined();
      },
    );
  });
});

describe("token functions", () => {
  it("refuses a token that would corrupt the header block", async () => {
    await using m = await connectMesh({
      connection: t.nc,
      prefix: t.prefix,
      token: async () => `${await token("*")}\r\n`,
    });
    expect((await failure(m.request("billing", "charge"))).code).toBe("UNAUTHENTICATED");
  });
});

describe("token refresh", () => {
  it("calls the token function again before the token expires", async () => {
    const p = uniquePrefix("authr");
    await using a = await startAgent({
      connection: t.nc,
      prefix: p,
      service: "ref",
      auth: { jwks: keys.jwks },
      methods: { m: () => "ok" },
    });
    let minted = 0;
    await using m = await connectMesh({
      connection: t.nc,
      prefix: p,
      token: () => {
        minted++;
        return issueToken({ key: keys.privateJwk, sub: "r", scope: "*", ttl: 2 });
      },
    });
    expect(await m.request("ref", "m")).toBe("ok");
    // 80 % of a 2 s life: a new token comes after about 1.6 s, well before expiry.
    await expect.poll(() => minted, { timeout: 5000, interval: 100 }).toBeGreaterThanOrEqual(2);
    expect(await m.request("ref", "m")).toBe("ok");
    expect(a.id).toBeDefined();
  });
});
