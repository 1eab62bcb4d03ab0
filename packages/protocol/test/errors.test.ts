import {
  ClosedConnectionError,
  headers,
  NoRespondersError,
  RequestError,
  TimeoutError,
} from "@nats-io/nats-core";
import {
  ErrorCodes,
  errorFromReply,
  errorReply,
  Header,
  isMeshError,
  MeshError,
} from "@natsmesh/protocol";
import { toMeshError } from "@natsmesh/protocol/internal";
import { describe, expect, it } from "vitest";

describe("MeshError", () => {
  it("takes status and retryable from the table", () => {
    for (const [code, { status, retryable }] of Object.entries(ErrorCodes)) {
      const err = new MeshError(code, "m");
      expect(err.status).toBe(status);
      expect(err.retryable).toBe(retryable);
      expect(err.name).toBe("MeshError");
      expect(err).toBeInstanceOf(Error);
    }
    expect(new MeshError("UNAVAILABLE", "x").retryable).toBe(true);
    expect(new MeshError("OVERLOADED", "x").retryable).toBe(true);
    expect(new MeshError("DEADLINE_EXCEEDED", "x").retryable).toBe(false);
  });

  it("keeps application codes, their status, data and cause", () => {
    const cause = new Error("db");
    const err = new MeshError("INSUFFICIENT_FUNDS", "no money", {
      status: 409,
      data: { need: 5 },
      cause,
    });
    expect(err.code).toBe("INSUFFICIENT_FUNDS");
    expect(err.status).toBe(409);
    expect(err.data).toEqual({ need: 5 });
    expect(err.cause).toBe(cause);
    expect(err.retryable).toBe(false);
    expect(new MeshError("CUSTOM", "x").status).toBe(500);
  });
});

describe("error replies", () => {
  it("round-trips code, status, message and data through headers and body", () => {
    const h = headers();
    const body = errorReply(
      new MeshError("INSUFFICIENT_FUNDS", "no money", { status: 409, data: { need: 5 } }),
      h,
    );
    expect(h.get(Header.ServiceErrorCode)).toBe("409");
    expect(h.get(Header.ServiceError)).toBe("no money");
    expect(h.get(Header.MeshError)).toBe("INSUFFICIENT_FUNDS");
    const back = errorFromReply(h, body);
    expect(back?.code).toBe("INSUFFICIENT_FUNDS");
    expect(back?.status).toBe(409);
    expect(back?.message).toBe("no money");
    expect(back?.data).toEqual({ need: 5 });
  });

  it("makes hostile messages header-safe", () => {
    const h = headers();
    errorReply(new MeshError("BAD_REQUEST", `line1\r\nInjected: yes\n${"x".repeat(2000)}`), h);
    const text = h.get(Header.ServiceError);
    expect(text).not.toMatch(/[\r\n]/);
    expect(text.length).toBeLessThanOrEqual(512);
    expect(h.get("Injected")).toBe("");
  });

  it("replaces a code that cannot travel in a header with INTERNAL", () => {
    const h = headers();
    const body = errorReply(new MeshError("bad code\r\n", "x"), h);
    expect(h.get(Header.MeshError)).toBe("INTERNAL");
    expect(body.code).toBe("INTERNAL");
  });

  it("returns undefined for a reply without error headers", () => {
    expect(errorFromReply(undefined, { a: 1 })).toBeUndefined();
    expect(errorFromReply(headers(), { a: 1 })).toBeUndefined();
  });

  it("maps a plain NATS micro error (status and message only) to the table's code", () => {
    const h = headers();
    h.set(Header.ServiceErrorCode, "503");
    h.set(Header.ServiceError, "busy");
    const err = errorFromReply(h, undefined);
    expect(err?.code).toBe("UNAVAILABLE");
    expect(err?.message).toBe("busy");
    expect(err?.retryable).toBe(true);
  });

  it("survives hostile error headers and bodies", () => {
    const h = headers();
    h.set(Header.ServiceErrorCode, "not-a-number");
    h.set(Header.MeshError, "x".repeat(100));
    const err = errorFromReply(h, "garbage body");
    expect(err?.code).toBe("INTERNAL");
    expect(err?.status).toBe(500);
    const h2 = headers();
    h2.set(Header.ServiceErrorCode, "99999");
    expect(errorFromReply(h2, { message: 42, data: undefined })?.status).toBe(500);
  });
});

describe("toMeshError", () => {
  it("maps nats.js no responders to UNAVAILABLE", () => {
    const err = toMeshError(new RequestError("x", { cause: new NoRespondersError("a.b") }));
    expect(err.code).toBe("UNAVAILABLE");
    expect(toMeshError(new NoRespondersError("a.b")).code).toBe("UNAVAILABLE");
  });

  it("maps nats.js timeouts to DEADLINE_EXCEEDED", () => {
    expect(toMeshError(new TimeoutError()).code).toBe("DEADLINE_EXCEEDED");
    expect(toMeshError(new RequestError("x", { cause: new TimeoutError() })).code).toBe(
      "DEADLINE_EXCEEDED",
    );
  });

  it("maps a closed connection to UNAVAILABLE", () => {
    expect(toMeshError(new ClosedConnectionError()).code).toBe("UNAVAILABLE");
  });

  it("hides anything else behind INTERNAL with the original as cause", () => {
    const original = new Error("secret stack detail");
    const err = toMeshError(original);
    expect(err.code).toBe("INTERNAL");
    expect(err.message).not.toContain("secret");
    expect(err.cause).toBe(original);
    expect(toMeshError("a string").code).toBe("INTERNAL");
  });

  it("passes a MeshError through", () => {
    const err = new MeshError("FORBIDDEN", "no");
    expect(toMeshError(err)).toBe(err);
    expect(isMeshError(err, "FORBIDDEN")).toBe(true);
    expect(isMeshError(err, "NOT_FOUND")).toBe(false);
  });
});
