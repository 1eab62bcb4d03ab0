import { headers } from "@nats-io/nats-core";
import {
  createVerifier,
  eventMatches,
  generateKeyPair,
  Header,
  issueToken,
  isValidEventName,
  isValidEventPattern,
  MeshError,
  parseDeadLetterSubject,
  parseEventSubject,
  patternId,
  scopeAllowsEmit,
  subjects,
  validateInstanceRecord,
} from "@natsmesh/protocol";
import {
  deadLetterHeaders,
  parseEventPatternSubject,
  readDeadLetter,
  replayHeaders,
} from "@natsmesh/protocol/internal";
import { importJWK, SignJWT } from "jose";
import { describe, expect, it } from "vitest";

describe("event names and patterns", () => {
  it("accepts 1-8 dotted tokens of at most 128 characters", () => {
    expect(isValidEventName("order")).toBe(true);
    expect(isValidEventName("order.created")).toBe(true);
    expect(isValidEventName("a.b.c.d.e.f.g.h")).toBe(true);
    expect(isValidEventName("a.b.c.d.e.f.g.h.i")).toBe(false);
    expect(isValidEventName("x".repeat(64))).toBe(true);
    expect(isValidEventName("x".repeat(65))).toBe(false);
    expect(isValidEventName(`${"x".repeat(64)}.${"y".repeat(63)}`)).toBe(true);
    expect(isValidEventName(`${"x".repeat(64)}.${"y".repeat(64)}`)).toBe(false);
    for (const bad of ["", ".", "a.", ".a", "a..b", "a b", "a.*", "a.>", "ä", 7, undefined]) {
      expect(isValidEventName(bad)).toBe(false);
    }
  });

  it("allows * anywhere and > last in patterns only", () => {
    for (const ok of ["order.*", "*.created", "order.>", ">", "*", "a.*.c"]) {
      expect(isValidEventPattern(ok)).toBe(true);
    }
    for (const bad of ["order.>.x", "or*der", "a.>>", "", "a..b", "a.b*"]) {
      expect(isValidEventPattern(bad)).toBe(false);
    }
    expect(() => subjects("m").event("order.*")).toThrow(TypeError);
    expect(subjects("m").eventPattern("order.*")).toBe("m.evt.order.*");
  });

  it("matches names against patterns as NATS does", () => {
    expect(eventMatches("order.*", "order.created")).toBe(true);
    expect(eventMatches("order.*", "order.created.eu")).toBe(false);
    expect(eventMatches("order.>", "order.created.eu")).toBe(true);
    expect(eventMatches("order.>", "order")).toBe(false);
    expect(eventMatches("*.created", "user.created")).toBe(true);
    expect(eventMatches("order.created", "order.created")).toBe(true);
    expect(eventMatches("order.created", "order")).toBe(false);
    expect(eventMatches(">", "a.b")).toBe(true);
  });

  it("gives every pattern a distinct consumer-safe id", () => {
    const ids = ["a.b", "a_b", "a.*", "a.any", "a.>", "a.all"].map(patternId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(patternId("order.created")).toMatch(/^order_created-[0-9a-f]{8}$/);
  });

  it("parses event and dead-letter subjects, refusing foreign ones", () => {
    expect(parseEventSubject("m.evt.order.created", "m")).toBe("order.created");
    expect(parseEventSubject("m.evt.order.*", "m")).toBeUndefined();
    expect(parseEventSubject("x.evt.order", "m")).toBeUndefined();
    expect(parseEventPatternSubject("m.evt.order.*", "m")).toBe("order.*");
    expect(parseEventPatternSubject("m.evt.>", "m")).toBe(">");
    expect(parseEventPatternSubject("x.evt.order.*", "m")).toBeUndefined();
    expect(parseEventPatternSubject("m.evt.", "m")).toBeUndefined();
    expect(parseEventPatternSubject("m.evt.a..b", "m")).toBeUndefined();
    expect(parseDeadLetterSubject("m.dlq.billing.order.created", "m")).toEqual({
      service: "billing",
      event: "order.created",
    });
    expect(parseDeadLetterSubject("m.dlq.billing", "m")).toBeUndefined();
  });
});

describe("emit scope", () => {
  it("allows only emit: patterns that match", () => {
    expect(scopeAllowsEmit("emit:order.created", "order.created")).toBe(true);
    expect(scopeAllowsEmit("emit:order.*", "order.created")).toBe(true);
    expect(scopeAllowsEmit("emit:>", "order.created")).toBe(true);
    expect(scopeAllowsEmit("emit:order.*", "user.created")).toBe(false);
    expect(scopeAllowsEmit("* order.created announce:order", "order.created")).toBe(false);
    expect(scopeAllowsEmit("emit:order..x emit:", "order.created")).toBe(false);
  });
});

describe("verification at a past instant", () => {
  it("accepts a token valid at that instant though expired now, and refuses the reverse", async () => {
    const keys = await generateKeyPair();
    const verifier = createVerifier({ jwks: keys.jwks, clockToleranceSec: 0 });
    const now = Math.floor(Date.now() / 1000);
    // Issued five minutes ago, expired one minute ago.
    const token = await new SignJWT({ scope: "emit:>" })
      .setProtectedHeader({ alg: "EdDSA", kid: keys.kid })
      .setSubject("emitter")
      .setAudience("natsmesh")
      .setIssuedAt(now - 300)
      .setExpirationTime(now - 60)
      .sign(await importJWK(keys.privateJwk, "EdDSA"));
    expect(await verifier.check(token)).toMatchObject({ data: { reason: "expired" } });
    const at = await verifier.checkAt(token, (now - 120) * 1000);
    expect(at).not.toBeInstanceOf(MeshError);
    expect((at as { claims: { sub: string } }).claims.sub).toBe("emitter");
    // The refusal "expired" cached for now does not leak into a check at another instant.
    expect(await verifier.checkAt(token, (now - 100) * 1000)).not.toBeInstanceOf(MeshError);
    expect(await verifier.checkAt(token, now * 1000)).toMatchObject({
      data: { reason: "expired" },
    });
    // Before it was issued, it cannot have been used.
    expect(await verifier.checkAt(token, (now - 400) * 1000)).toMatchObject({
      data: { reason: "not_yet_valid" },
    });
  });

  it("checks cached tokens against the instant, not the cache", async () => {
    const keys = await generateKeyPair();
    const verifier = createVerifier({ jwks: keys.jwks, clockToleranceSec: 0 });
    const token = await issueToken({ key: keys.privateJwk, sub: "e", scope: "", ttl: 60 });
    await verifier.verify(token);
    expect(await verifier.checkAt(token, Date.now())).not.toBeInstanceOf(MeshError);
    expect(await verifier.checkAt(token, Date.now() + 120_000)).toMatchObject({
      data: { reason: "expired" },
    });
    expect(await verifier.checkAt(token, Date.now() - 60_000)).toMatchObject({
      data: { reason: "not_yet_valid" },
    });
  });
});

describe("dead letters", () => {
  const info = {
    code: "INTERNAL",
    message: "boom\r\nInjected: 1",
    service: "billing",
    consumer: "billing__k7",
    deliveries: 5,
    subject: "m.evt.order.created",
    seq: 42,
    eventId: "ev1",
  };

  it("keeps the event's headers, drops server directives and forged dead-letter headers", () => {
    const event = headers();
    event.set(Header.ContentType, "application/json");
    event.set(Header.Authorization, "Bearer x");
    event.set("Nats-Expected-Stream", "other");
    event.set(Header.MsgId, "ev1");
    event.set(Header.DlqService, "forged");
    event.set(Header.ReplayService, "forged");
    event.set("X-App", "kept");
    const h = deadLetterHeaders(event, info);
    expect(h.get(Header.ContentType)).toBe("application/json");
    expect(h.get("X-App")).toBe("kept");
    expect(h.get("Nats-Expected-Stream")).toBe("");
    expect(h.get(Header.ReplayService)).toBe("");
    expect(h.values(Header.DlqService)).toEqual(["billing"]);
    expect(h.get(Header.MsgId)).toBe("billing__k7:42");
    expect(h.get(Header.ErrorMessage)).toBe("boom Injected: 1");
    expect(h.get(Header.DlqEventId)).toBe("ev1");

    const letter = readDeadLetter(7, "m.dlq.billing.order.created", h, "m")!;
    expect(letter).toMatchObject({ service: "billing", event: "order.created", seq: 42 });
    const replay = replayHeaders(letter, h, "Bearer operator");
    expect(replay.get(Header.ReplayService)).toBe("billing");
    expect(replay.get(Header.MsgId)).toBe("ev1:replay:7");
    expect(replay.get(Header.Authorization)).toBe("Bearer operator");
    expect(replay.get(Header.MeshError)).toBe("");
  });

  it("refuses to replay a dead letter outside the mesh", () => {
    const h = deadLetterHeaders(undefined, info);
    h.set(Header.DlqSubject, "$JS.API.STREAM.DELETE.m_events");
    expect(readDeadLetter(1, "m.dlq.billing.order.created", h, "m")?.replayable).toBe(false);
    // The letter's own subject must name the event it came from.
    const moved = deadLetterHeaders(undefined, info);
    expect(readDeadLetter(1, "m.dlq.billing.user.deleted", moved, "m")?.replayable).toBe(false);
    const other = deadLetterHeaders(undefined, info);
    expect(readDeadLetter(1, "m.dlq.shipping.order.created", other, "m")).toBeUndefined();
  });
});

describe("instance records with events", () => {
  const base = {
    v: 1,
    id: "i1",
    service: "s",
    version: "1",
    weight: 1,
    status: "ready",
    methods: [],
    subject: "mesh.inst.s.i1",
    host: "h",
    pid: 1,
    metadata: {},
    startedAt: 1,
  };

  it("keeps valid subscriptions and refuses bad ones", () => {
    const ok = validateInstanceRecord({
      ...base,
      events: [{ pattern: "order.*", mode: "durable", extra: 1 }],
    });
    expect(ok.ok && ok.value.events).toEqual([{ pattern: "order.*", mode: "durable" }]);
    expect(
      validateInstanceRecord({ ...base, events: [{ pattern: "a b", mode: "durable" }] }).ok,
    ).toBe(false);
    expect(validateInstanceRecord({ ...base, events: [{ pattern: "a", mode: "x" }] }).ok).toBe(
      false,
    );
    const many = Array.from({ length: 65 }, () => ({ pattern: "a", mode: "group" }));
    expect(validateInstanceRecord({ ...base, events: many }).ok).toBe(false);
  });
});
