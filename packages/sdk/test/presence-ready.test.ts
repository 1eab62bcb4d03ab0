import { getEventListeners, setMaxListeners } from "node:events";
import { isMeshError } from "@natsmesh/protocol";
import { ReadyWaits, resolveReadyOptions } from "@natsmesh/sdk/internal";
import { describe, expect, it } from "vitest";

// The waits behind mesh.ready(), over seeded state: which services have a ready instance.
// test/mesh-ready.test.ts runs them against a real nats-server, registry and agents.

function waits(ready: Set<string> = new Set()) {
  return new ReadyWaits((service) => ready.has(service));
}

function codeOf(err: unknown): string | undefined {
  return isMeshError(err) ? err.code : undefined;
}

const LONG = { timeoutMs: 60_000, signal: undefined };

describe("ReadyWaits", () => {
  it("ends every wait for the snapshot at once when it settles, and keeps none", async () => {
    const w = waits();
    const pending = Array.from({ length: 1000 }, () => w.wait({ service: undefined, ...LONG }));
    expect(w.pending).toBe(1000);
    w.settle();
    await Promise.all(pending);
    expect(w.pending).toBe(0);
    // Settled: later waits resolve without waiting.
    await w.wait({ service: undefined, ...LONG });
    expect(w.pending).toBe(0);
  });

  it("ends a service's waits once it has a ready instance after the snapshot, not before", async () => {
    const ready = new Set<string>();
    const w = waits(ready);
    let resolved = false;
    const wait = w.wait({ service: "echo", ...LONG }).then(() => {
      resolved = true;
    });
    ready.add("echo");
    w.changed("echo"); // during the snapshot: not yet
    await Promise.resolve();
    expect(resolved).toBe(false);
    w.settle(); // the snapshot is in, with echo in it
    await wait;
    const late = w.wait({ service: "greeter", ...LONG });
    w.changed("echo"); // another service: no effect
    expect(w.pending).toBe(1);
    ready.add("greeter");
    w.changed("greeter");
    await late;
    expect(w.pending).toBe(0);
  });

  it("takes out waits that time out or abort, timers and signal listeners included", async () => {
    const w = waits();
    const controller = new AbortController();
    setMaxListeners(2000, controller.signal);
    const timedOut = Array.from({ length: 500 }, () =>
      w.wait({ service: "ghost", timeoutMs: 20, signal: controller.signal }).catch(codeOf),
    );
    const aborted = Array.from({ length: 500 }, () =>
      w.wait({ service: undefined, timeoutMs: 60_000, signal: controller.signal }).catch((e) => e),
    );
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(1000);
    expect(await Promise.all(timedOut)).toEqual(Array(500).fill("DEADLINE_EXCEEDED"));
    expect(w.pending).toBe(500);
    const reason = new Error("gave up");
    controller.abort(reason);
    expect(new Set(await Promise.all(aborted))).toEqual(new Set([reason]));
    expect(w.pending).toBe(0);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    // An aborted signal rejects at once, and adds nothing.
    await expect(w.wait({ service: undefined, ...LONG, signal: controller.signal })).rejects.toBe(
      reason,
    );
    expect(w.pending).toBe(0);
  });

  it("says UNAVAILABLE, with the cause, when the bucket could not be read before the timeout", async () => {
    const w = waits();
    const cause = new Error("jetstream not enabled");
    w.failed(cause);
    const err = await w
      .wait({ service: undefined, timeoutMs: 10, signal: undefined })
      .catch((e: unknown) => e);
    expect(codeOf(err)).toBe("UNAVAILABLE");
    expect((err as Error).cause).toBe(cause);
    // Once settled, an old failure says nothing: a missing service is a timeout.
    w.settle();
    w.failed(cause);
    const late = await w.wait({ service: "ghost", timeoutMs: 10, signal: undefined }).catch(codeOf);
    expect(late).toBe("DEADLINE_EXCEEDED");
  });

  it("rejects pending and later waits with UNAVAILABLE once closed", async () => {
    const w = waits();
    const pending = [
      w.wait({ service: undefined, ...LONG }).catch(codeOf),
      w.wait({ service: "echo", ...LONG }).catch(codeOf),
    ];
    w.close();
    expect(await Promise.all(pending)).toEqual(["UNAVAILABLE", "UNAVAILABLE"]);
    expect(w.pending).toBe(0);
    w.settle();
    expect(await w.wait({ service: undefined, ...LONG }).catch(codeOf)).toBe("UNAVAILABLE");
  });
});

describe("resolveReadyOptions", () => {
  it("defaults the timeout and checks every option", () => {
    expect(resolveReadyOptions({}, 5000)).toEqual({
      service: undefined,
      timeoutMs: 5000,
      signal: undefined,
    });
    expect(resolveReadyOptions({ service: "echo", timeout: 10 }, 5000)).toMatchObject({
      service: "echo",
      timeoutMs: 10,
    });
    expect(() => resolveReadyOptions({ timeout: 0 }, 5000)).toThrow(TypeError);
    expect(() => resolveReadyOptions({ timeout: 1.5 }, 5000)).toThrow(TypeError);
    expect(() => resolveReadyOptions({ service: "a.b" }, 5000)).toThrow(TypeError);
    expect(() => resolveReadyOptions({ signal: {} }, 5000)).toThrow(TypeError);
    expect(() => resolveReadyOptions(null, 5000)).toThrow(TypeError);
  });
});
