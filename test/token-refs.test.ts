import { randomBytes } from "node:crypto";
import { type Msg, headers as natsHeaders } from "@nats-io/nats-core";
import { type Agent, type RequestContext, startAgent } from "@natsmesh/agent";
import {
  generateKeyPair,
  Header,
  issueToken,
  type MeshKeyPair,
  subjects,
} from "@natsmesh/protocol";
import { tokenRef } from "@natsmesh/protocol/internal";
import { connectMesh } from "@natsmesh/sdk";
import { cleanup, setup, type TestSetup, waitUntil } from "@natsmesh/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

// After a token has been sent once in full and verified, the SDK sends its 128-bit reference
// (`Mesh-Token-Ref`) instead. An agent accepts a reference only for a token it verified itself
// and still holds; anything else is answered `unknown_ref` before the handler runs, and the SDK
// then sends the token in full, so the call runs once.

let t: TestSetup;
let keys: MeshKeyPair;
const started: Agent[] = [];
let runs = 0;

function token(sub: string, ttl = 3600, key = keys.privateJwk): Promise<string> {
  return issueToken({ key, sub, scope: "vault.*", ttl });
}

async function vault(): Promise<Agent> {
  const agent = await startAgent({
    servers: t.server.url,
    prefix: t.prefix,
    service: "vault",
    auth: { jwks: keys.jwks },
    methods: {
      open: (_p: unknown, ctx: RequestContext) => {
        runs++;
        return ctx.caller?.sub;
      },
      seal: (_p: unknown, ctx: RequestContext) => {
        runs++;
        return ctx.caller?.sub;
      },
    },
  });
  started.push(agent);
  return agent;
}

/** The token headers of the requests on `vault.open`, in order, while watching. */
async function watchTokens(): Promise<{ seen: string[]; stop: () => void }> {
  const seen: string[] = [];
  const sub = t.nc.subscribe(subjects(t.prefix).service("vault", "open"), {
    callback: (_err, msg: Msg) => {
      const h = msg.headers;
      seen.push(h?.get(Header.Authorization) ? "full" : h?.get(Header.TokenRef) ? "ref" : "none");
    },
  });
  // The subscription reaches the server before anything is sent.
  await t.nc.flush();
  return { seen, stop: () => sub.unsubscribe() };
}

interface Answer {
  value?: unknown;
  code?: string;
  reason?: string;
}

/** A plain NATS request to `instance` with the given token headers. */
async function open(instance: Agent, h: { ref?: string; authorization?: string }): Promise<Answer> {
  const hdrs = natsHeaders();
  if (h.ref !== undefined) hdrs.set(Header.TokenRef, h.ref);
  if (h.authorization !== undefined) hdrs.set(Header.Authorization, h.authorization);
  const subject = subjects(t.prefix).instance("vault", instance.id, "open");
  const reply = await t.nc.request(subject, "null", { headers: hdrs, timeout: 5000 });
  const code = reply.headers?.get(Header.MeshError) || undefined;
  if (code === undefined) return { value: reply.json() };
  return { code, reason: reply.json<{ data?: { reason?: string } }>().data?.reason };
}

const UNKNOWN_REF: Answer = { code: "UNAUTHENTICATED", reason: "unknown_ref" };

beforeAll(async () => {
  t = await setup({ tag: "ref" });
  keys = await generateKeyPair();
});
afterEach(async () => {
  await cleanup(...started.splice(0));
});
afterAll(() => cleanup(t));

describe("token references", () => {
  it("are sent once an agent has verified the token in full, and carry the caller's claims", async () => {
    await vault();
    const mesh = await connectMesh({
      servers: t.server.url,
      prefix: t.prefix,
      token: await token("alice"),
    });
    const wire = await watchTokens();
    try {
      expect(await mesh.request("vault", "open")).toBe("alice");
      expect(await mesh.request("vault", "open")).toBe("alice");
      expect(await mesh.request("vault", "open")).toBe("alice");
      await t.nc.flush();
      expect(wire.seen).toEqual(["full", "ref", "ref"]);
    } finally {
      wire.stop();
      await mesh.close();
    }
  });

  it("make the SDK resend the token in full to an instance that never verified it, and the call runs once", async () => {
    const first = await vault();
    const bob = await token("bob");
    const mesh = await connectMesh({ servers: t.server.url, prefix: t.prefix, token: bob });
    try {
      expect(await mesh.request("vault", "open")).toBe("bob");
      expect(await open(first, { ref: tokenRef(bob) })).toEqual({ value: "bob" });
      await first.stop();
      const fresh = await vault();
      // Verified by `first` only: `fresh` does not take the reference on anyone's word.
      expect(await open(fresh, { ref: tokenRef(bob) })).toEqual(UNKNOWN_REF);
      const wire = await watchTokens();
      const before = runs;
      expect(await mesh.request("vault", "open")).toBe("bob");
      await t.nc.flush();
      wire.stop();
      expect(runs - before).toBe(1);
      expect(wire.seen).toEqual(["ref", "full"]);
      // Sent in full once, the token is known to `fresh` too.
      expect(await open(fresh, { ref: tokenRef(bob) })).toEqual({ value: "bob" });
    } finally {
      await mesh.close();
    }
  });
});

describe("token references from several callers", () => {
  it("each caller's reference stands for its own token, and a method allowed says nothing of another", async () => {
    await vault();
    // The agent reads the SDK's header layout from bytes and remembers the last reference and
    // the last scope decision: alternating callers and methods must never borrow either.
    const frank = await connectMesh({
      servers: t.server.url,
      prefix: t.prefix,
      token: await issueToken({ key: keys.privateJwk, sub: "frank", scope: "vault.open", ttl: 60 }),
    });
    const grace = await connectMesh({
      servers: t.server.url,
      prefix: t.prefix,
      token: await token("grace"),
    });
    try {
      for (let i = 0; i < 3; i++) {
        expect(await frank.request("vault", "open")).toBe("frank");
        expect(await grace.request("vault", "open")).toBe("grace");
        expect(await grace.request("vault", "seal")).toBe("grace");
        const before = runs;
        await expect(frank.request("vault", "seal")).rejects.toMatchObject({ code: "FORBIDDEN" });
        expect(runs).toBe(before);
      }
    } finally {
      await frank.close();
      await grace.close();
    }
  });
});

describe("hostile token references", () => {
  it("a forged or malformed reference is refused before the handler runs", async () => {
    const agent = await vault();
    const carol = await token("carol");
    expect(await open(agent, { authorization: `Bearer ${carol}` })).toEqual({ value: "carol" });
    const before = runs;
    for (const ref of [
      randomBytes(16).toString("base64url"),
      // One character off (the first: the last carries only two bits of the hash).
      `${tokenRef(carol).startsWith("A") ? "B" : "A"}${tokenRef(carol).slice(1)}`,
      tokenRef(carol).toLowerCase(),
      "",
      "x".repeat(4096),
      "../../etc",
      carol,
    ]) {
      expect([ref.slice(0, 30), await open(agent, { ref })]).toEqual([
        ref.slice(0, 30),
        UNKNOWN_REF,
      ]);
    }
    expect(runs).toBe(before);
  });

  it("the reference of a token that never verified (unknown key) is unknown", async () => {
    const agent = await vault();
    const stranger = await generateKeyPair();
    const forged = await token("mallory", 3600, stranger.privateJwk);
    expect(await open(agent, { authorization: `Bearer ${forged}` })).toMatchObject({
      code: "UNAUTHENTICATED",
      reason: "unknown_kid",
    });
    expect(await open(agent, { ref: tokenRef(forged) })).toEqual(UNKNOWN_REF);
  });

  it("the reference of an expired token is refused, though the token once verified", async () => {
    const agent = await vault();
    const short = await token("dave", 2);
    expect(await open(agent, { authorization: `Bearer ${short}` })).toEqual({ value: "dave" });
    expect(await open(agent, { ref: tokenRef(short) })).toEqual({ value: "dave" });
    const exp = JSON.parse(Buffer.from(short.split(".")[1]!, "base64url").toString()).exp;
    expect(await waitUntil(() => Date.now() >= exp * 1000 + 50, { timeoutMs: 10_000 })).toBe(true);
    const before = runs;
    expect(await open(agent, { ref: tokenRef(short) })).toEqual(UNKNOWN_REF);
    expect(runs).toBe(before);
  });

  it("a replayed reference speaks only for its own token, and never overrides Authorization", async () => {
    const agent = await vault();
    const erin = await token("erin");
    expect(await open(agent, { authorization: `Bearer ${erin}` })).toEqual({ value: "erin" });
    // From another connection: the reference is as good as the token it stands for, no more.
    expect(await open(agent, { ref: tokenRef(erin) })).toEqual({ value: "erin" });
    // A request with Authorization is judged by it alone, whatever reference rides along.
    expect(
      await open(agent, { authorization: "Bearer not.a.jwt", ref: tokenRef(erin) }),
    ).toMatchObject({ code: "UNAUTHENTICATED", reason: "malformed" });
  });
});
