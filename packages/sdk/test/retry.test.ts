import { MeshError } from "@natsmesh/protocol";
import { backoffMs, type RetryState, retryDecision } from "@natsmesh/sdk/internal";
import { describe, expect, it } from "vitest";
import { scripted } from "./fixtures.js";

const state = (changes: Partial<RetryState> = {}): RetryState => ({
  direct: true,
  idempotent: false,
  retried: 0,
  retries: 2,
  remainingMs: 1000,
  ...changes,
});

const noResponders = new MeshError("UNAVAILABLE", "no responders", {
  data: { noResponders: true },
});
const startedThenStopped = new MeshError("UNAVAILABLE", "instance stopped", {
  data: { started: true },
});

describe("retryDecision", () => {
  it("moves a call whose instance had no responders to the next one, retries or not", () => {
    expect(retryDecision(noResponders, state({ retries: 0 }), scripted())).toEqual({
      action: "next-instance",
    });
    expect(retryDecision(noResponders, state({ retried: 2 }), scripted())).toEqual({
      action: "next-instance",
    });
  });

  it("retries no responders on the queue subject like any UNAVAILABLE", () => {
    expect(retryDecision(noResponders, state({ direct: false }), scripted(0))).toEqual({
      action: "retry",
      pauseMs: 5,
    });
  });

  it.each(["OVERLOADED", "UNAVAILABLE"])("retries %s after a growing, jittered pause", (code) => {
    const err = new MeshError(code, "busy");
    expect(retryDecision(err, state(), scripted(0))).toEqual({ action: "retry", pauseMs: 5 });
    expect(retryDecision(err, state({ retried: 1 }), scripted(0.5))).toEqual({
      action: "retry",
      pauseMs: 30,
    });
  });

  it("retries a call the handler had started only when it is idempotent", () => {
    expect(retryDecision(startedThenStopped, state(), scripted())).toEqual({ action: "fail" });
    expect(retryDecision(startedThenStopped, state({ idempotent: true }), scripted(0))).toEqual({
      action: "retry",
      pauseMs: 5,
    });
  });

  it("retries DEADLINE_EXCEEDED at once, only when idempotent", () => {
    const timeout = new MeshError("DEADLINE_EXCEEDED", "timed out");
    expect(retryDecision(timeout, state(), scripted())).toEqual({ action: "fail" });
    expect(retryDecision(timeout, state({ idempotent: true }), scripted())).toEqual({
      action: "retry",
      pauseMs: 0,
    });
  });

  it.each(["BAD_REQUEST", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "INTERNAL", "MY_CODE"])(
    "never retries %s, idempotent or not",
    (code) => {
      for (const idempotent of [false, true]) {
        expect(retryDecision(new MeshError(code, "no"), state({ idempotent }), scripted())).toEqual(
          { action: "fail" },
        );
      }
    },
  );

  it("stops at `retries`", () => {
    const busy = new MeshError("OVERLOADED", "busy");
    expect(retryDecision(busy, state({ retried: 1, retries: 2 }), scripted(0)).action).toBe(
      "retry",
    );
    expect(retryDecision(busy, state({ retried: 2, retries: 2 }), scripted())).toEqual({
      action: "fail",
    });
    expect(retryDecision(busy, state({ retries: 0 }), scripted())).toEqual({ action: "fail" });
  });

  it("fails when the deadline has passed, or the pause would outlast it", () => {
    expect(retryDecision(noResponders, state({ remainingMs: 0 }), scripted())).toEqual({
      action: "fail",
    });
    const busy = new MeshError("OVERLOADED", "busy");
    expect(retryDecision(busy, state({ remainingMs: 5 }), scripted(0))).toEqual({
      action: "fail",
    });
    expect(retryDecision(busy, state({ remainingMs: 6 }), scripted(0))).toEqual({
      action: "retry",
      pauseMs: 5,
    });
  });
});

describe("backoffMs", () => {
  it("grows with the retry, jitters by up to 20 ms per retry, and stops at 200", () => {
    expect(backoffMs(1, () => 0)).toBe(5);
    expect(backoffMs(1, () => 0.999)).toBeCloseTo(24.98, 5);
    expect(backoffMs(3, () => 0.5)).toBe(45);
    expect(backoffMs(50, () => 0)).toBe(200);
  });
});
