import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { createUser } from "@nats-io/nkeys";
import type { NatsCredentials } from "@natsmesh/protocol";
import {
  connectionOptions,
  natsAuthenticator,
  natsCredentialsFromEnv,
  resolveIdentity,
  resolveNatsCredentials,
} from "@natsmesh/protocol/internal";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const SECRET = "pw-9f3c1e-never-printed";
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "natsmesh-creds-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("natsCredentialsFromEnv", () => {
  it("reads the variables the nats CLI reads, blank as unset", () => {
    expect(natsCredentialsFromEnv({})).toBeUndefined();
    expect(natsCredentialsFromEnv({ NATS_USER: " ", NATS_TOKEN: "" })).toBeUndefined();
    expect(natsCredentialsFromEnv({ NATS_USER: "u", NATS_PASSWORD: " p " })).toEqual({
      user: "u",
      password: " p ",
    });
    expect(natsCredentialsFromEnv({ NATS_TOKEN: "t", NATS_CREDS: "/c", NATS_NKEY: "/n" })).toEqual({
      token: "t",
      credsFile: "/c",
      nkeyFile: "/n",
    });
  });
});

describe("resolveNatsCredentials", () => {
  it("takes exactly one kind of credentials", () => {
    expect(resolveNatsCredentials(undefined)).toBeUndefined();
    expect(resolveNatsCredentials({})).toBeUndefined();
    expect(resolveNatsCredentials({ user: "u", password: "p" })?.method).toBe("user");
    expect(resolveNatsCredentials({ user: "u" })?.method).toBe("user");
    expect(resolveNatsCredentials({ token: "t" })?.method).toBe("token");
    expect(resolveNatsCredentials({ credsFile: "/x.creds" })?.method).toBe("creds");
    expect(resolveNatsCredentials({ nkeyFile: "/x.nk" })?.method).toBe("nkey");
    expect(() => resolveNatsCredentials({ user: "u", token: "t" })).toThrow(TypeError);
    expect(() => resolveNatsCredentials({ token: "t", credsFile: "/c" })).toThrow(TypeError);
    expect(() => resolveNatsCredentials({ password: "p" })).toThrow(TypeError);
    expect(() => resolveNatsCredentials({ user: "" })).toThrow(TypeError);
    expect(() => resolveNatsCredentials({ token: "t".repeat(4097) })).toThrow(
      /credentials\.token is longer than 4096 characters/,
    );
    expect(resolveNatsCredentials({ token: "t".repeat(4096) })).toBeDefined();
    expect(() => resolveNatsCredentials({ token: 7 as unknown as string })).toThrow(TypeError);
    expect(() => resolveNatsCredentials(null as unknown as NatsCredentials)).toThrow(TypeError);
  });

  it("never shows a password or token: not in JSON, inspect, or its own errors", () => {
    const user = resolveNatsCredentials({ user: "billing-agent", password: SECRET })!;
    const token = resolveNatsCredentials({ token: SECRET })!;
    for (const c of [user, token]) {
      expect(JSON.stringify({ c })).not.toContain(SECRET);
      expect(inspect({ c }, { depth: 5 })).not.toContain(SECRET);
      expect(`${JSON.stringify(c)}`).toContain("[redacted]");
    }
    expect(JSON.parse(JSON.stringify(user))).toEqual({
      method: "user",
      user: "billing-agent",
      password: "[redacted]",
    });
    // The secret is still there for the connection.
    expect(user.password).toBe(SECRET);
    expect(Object.isFrozen(user)).toBe(true);
    let err: Error | undefined;
    try {
      resolveNatsCredentials({ token: SECRET, user: "u", password: SECRET });
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeInstanceOf(TypeError);
    expect(err?.message).not.toContain(SECRET);
  });

  it("does not copy what the caller passed, nor mutate it", () => {
    const given = { user: "u", password: "p" };
    const resolved = resolveNatsCredentials(given)!;
    expect(resolved).not.toBe(given);
    expect(given).toEqual({ user: "u", password: "p" });
  });
});

describe("connection options", () => {
  it("carry secrets in an authenticator, never as plain options", () => {
    const credentials = resolveNatsCredentials({ user: "u", password: SECRET });
    const options = connectionOptions("nats://127.0.0.1:1", "n", {
      credentials,
      inboxPrefix: "_INBOX_u",
    });
    expect(options.inboxPrefix).toBe("_INBOX_u");
    expect(options.user).toBeUndefined();
    expect(options.pass).toBeUndefined();
    expect(JSON.stringify(options)).not.toContain(SECRET);
    expect(typeof options.authenticator).toBe("function");
    expect(connectionOptions(undefined, "n").authenticator).toBeUndefined();
  });

  it("resolveIdentity reads the environment only for a connection of its own", () => {
    const env = { NATS_USER: "env-user", NATS_PASSWORD: "x", NATS_INBOX_PREFIX: "_INBOX_env" };
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      const own = resolveIdentity({}, "mesh");
      expect(own.credentials?.user).toBe("env-user");
      expect(own.inboxPrefix).toBe("_INBOX_env");
      expect(resolveIdentity({ connection: {} }, "mesh")).toEqual({
        credentials: undefined,
        inboxPrefix: undefined,
      });
      // Options win over the environment.
      expect(resolveIdentity({ credentials: { token: "t" } }, "mesh").credentials?.method).toBe(
        "token",
      );
      expect(() => resolveIdentity({ inboxPrefix: "mesh.inbox" }, "mesh")).toThrow(TypeError);
      expect(() => resolveIdentity({ inboxPrefix: "bad prefix" }, "mesh")).toThrow(TypeError);
    } finally {
      for (const k of Object.keys(env)) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });
});

describe("natsAuthenticator", () => {
  it("answers the server's challenge with the user, password or token", () => {
    const up = natsAuthenticator(resolveNatsCredentials({ user: "u", password: "p" })!);
    expect(up("nonce")).toEqual({ user: "u", pass: "p" });
    const token = natsAuthenticator(resolveNatsCredentials({ token: "t" })!);
    expect(token("nonce")).toEqual({ auth_token: "t" });
  });

  it("signs the nonce with the seed of an nkey file, read at each connect", async () => {
    const user = createUser();
    const file = join(dir, "user.nk");
    await writeFile(
      file,
      `# a comment as nsc writes\n${new TextDecoder().decode(user.getSeed())}\n`,
    );
    const auth = natsAuthenticator(resolveNatsCredentials({ nkeyFile: file })!);
    const nonce = "abcdefg";
    const out = auth(nonce) as { nkey: string; sig: string };
    expect(out.nkey).toBe(user.getPublicKey());
    const sig = Buffer.from(out.sig, "base64url");
    expect(user.verify(new TextEncoder().encode(nonce), sig)).toBe(true);
    // Rotated: the next connect signs with the new seed.
    const next = createUser();
    await writeFile(file, new TextDecoder().decode(next.getSeed()));
    expect((auth(nonce) as { nkey: string }).nkey).toBe(next.getPublicKey());
  });

  it("sends the JWT of a .creds file and signs with its seed", async () => {
    const user = createUser();
    const jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln";
    const file = join(dir, "user.creds");
    await writeFile(
      file,
      `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n` +
        `-----BEGIN USER NKEY SEED-----\n${new TextDecoder().decode(user.getSeed())}\n` +
        "------END USER NKEY SEED------\n",
    );
    const out = natsAuthenticator(resolveNatsCredentials({ credsFile: file })!)("n0nce") as {
      jwt: string;
      nkey: string;
      sig: string;
    };
    expect(out.jwt).toBe(jwt);
    expect(out.nkey).toBe(user.getPublicKey());
    expect(user.verify(new TextEncoder().encode("n0nce"), Buffer.from(out.sig, "base64url"))).toBe(
      true,
    );
  });

  it("names a missing file, and a file without a seed", async () => {
    const missing = natsAuthenticator(resolveNatsCredentials({ nkeyFile: join(dir, "none") })!);
    expect(() => missing("n")).toThrow(/nkey seed file .*none/);
    const empty = join(dir, "empty.nk");
    await writeFile(empty, "nothing here\n");
    const noSeed = natsAuthenticator(resolveNatsCredentials({ nkeyFile: empty })!);
    expect(() => noSeed("n")).toThrow(/holds no nkey seed/);
  });
});
