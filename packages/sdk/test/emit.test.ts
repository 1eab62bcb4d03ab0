import { jetstreamManager } from "@nats-io/jetstream";
import { headers } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { deadLetterStream, eventStream } from "@natsmesh/protocol";
import { connectMesh, MeshError } from "@natsmesh/sdk";
import { cleanup, setup, startNatsServer, type TestSetup, uniquePrefix } from "@natsmesh/testing";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let t: TestSetup;

beforeAll(async () => {
  t = await setup({ tag: "em", maxPayload: 64 * 1024 });
});
afterAll(() => cleanup(t));

function capture() {
  const lines: { level: number; msg: string; stream?: string; differences?: string[] }[] = [];
  const logger = pino(
    { level: "info" },
    { write: (line: string) => void lines.push(JSON.parse(line)) },
  );
  return { lines, logger };
}

describe("mesh.emit", () => {
  it("creates both streams with the contract's settings on first use", async () => {
    const prefix = uniquePrefix("em");
    await using mesh = await connectMesh({ servers: t.server.url, prefix, presence: false });
    const ack = await mesh.emit("order.created", { id: 1 });
    expect(ack).toMatchObject({ stream: eventStream(prefix), seq: 1, duplicate: false });
    const jsm = await jetstreamManager(t.nc);
    const events = await jsm.streams.info(eventStream(prefix));
    expect(events.config).toMatchObject({
      subjects: [`${prefix}.evt.>`],
      storage: "file",
      max_age: 7 * 24 * 3600 * 1e9,
      max_bytes: 1024 ** 3,
      duplicate_window: 120 * 1e9,
      num_replicas: 1,
    });
    const dlq = await jsm.streams.info(deadLetterStream(prefix));
    expect(dlq.config).toMatchObject({ subjects: [`${prefix}.dlq.>`], storage: "file" });
  });

  it("creates the streams again when they were deleted after first use", async () => {
    const prefix = uniquePrefix("em");
    const { lines, logger } = capture();
    await using mesh = await connectMesh({
      servers: t.server.url,
      prefix,
      presence: false,
      logger,
    });
    await mesh.emit("a", 1);
    const jsm = await jetstreamManager(t.nc);
    await jsm.streams.delete(eventStream(prefix));
    await jsm.streams.delete(deadLetterStream(prefix));
    await expect(mesh.emit("a", 2)).resolves.toMatchObject({ seq: 1 });
    expect(lines.filter((l) => l.msg === "created the stream")).toHaveLength(4);
  });

  it("refuses oversized events and invalid names before publishing", async () => {
    const prefix = uniquePrefix("em");
    await using mesh = await connectMesh({ servers: t.server.url, prefix, presence: false });
    const err = await mesh.emit("a", "x".repeat(70 * 1024)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe("PAYLOAD_TOO_LARGE");
    expect(() => mesh.broadcast("a", "x".repeat(70 * 1024))).toThrow(
      expect.objectContaining({ code: "PAYLOAD_TOO_LARGE" }),
    );
    await expect(mesh.emit("order.*", {})).rejects.toThrow(TypeError);
    await expect(mesh.emit("a..b", {})).rejects.toThrow(TypeError);
    await expect(mesh.emit("a", {}, { idempotencyKey: "has space" })).rejects.toThrow(TypeError);
    expect(() => mesh.broadcast("a.>", {})).toThrow(TypeError);
  });

  it("rejects with UNAVAILABLE within its timeout when JetStream is off", async () => {
    await using server = await startNatsServer({ jetstream: false });
    // The mesh's own timeout is far longer than the emit's: ending well before it shows the
    // emit's timeout was honoured, with slack for a loaded host (never a tight time bound).
    await using mesh = await connectMesh({
      servers: server.url,
      presence: false,
      timeoutMs: 25_000,
    });
    const started = Date.now();
    const err = await mesh.emit("a", 1, { timeout: 2000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe("UNAVAILABLE");
    expect(Date.now() - started).toBeLessThan(12_000);
  });

  it("fails with the refusal it got, not DEADLINE_EXCEEDED, when a later try is not answered in time", async () => {
    // A loaded host: the first publish is refused at once ("no responders": no stream), the
    // retry's answer comes after the emit's deadline. The caller must still learn why: no stream.
    await using server = await startNatsServer({ jetstream: false });
    const prefix = uniquePrefix("em");
    await using nc = await connect({ servers: server.url });
    let tries = 0;
    nc.subscribe(`${prefix}.evt.>`, {
      callback: (_err, msg) => {
        tries++;
        if (tries === 1) msg.respond(new Uint8Array(0), { headers: headers(503, "No Responders") });
      },
    });
    await nc.flush();
    await using mesh = await connectMesh({ servers: server.url, prefix, presence: false });
    const err = await mesh.emit("a", 1, { timeout: 3000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeshError);
    expect((err as MeshError).code).toBe("UNAVAILABLE");
    await expect.poll(() => tries).toBeGreaterThanOrEqual(2);
  });
});
