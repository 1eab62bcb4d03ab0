import { headers as natsHeaders } from "@nats-io/nats-core";
import { Header, PresenceLimits } from "@natsmesh/protocol";
import { describe, expect, it } from "vitest";
import { MAX_STATS_REPLY_BYTES, readStatsReply } from "../src/stats-reply.js";

const enc = new TextEncoder();
const reply = (body: unknown, h?: ReturnType<typeof natsHeaders>) => ({
  data: enc.encode(typeof body === "string" ? body : JSON.stringify(body)),
  headers: h,
});
const doc = (extra: Record<string, unknown> = {}) => ({
  type: "io.nats.micro.v1.stats_response",
  name: "svc",
  id: "abc",
  endpoints: [
    {
      name: "m",
      num_requests: 3,
      num_errors: 1,
      data: { latency_us: [[1024, 3]], errors: { INTERNAL: 1 } },
    },
  ],
  ...extra,
});

describe("readStatsReply", () => {
  it("reads a sample with its histogram and errors by code", () => {
    const r = readStatsReply(reply(doc()));
    expect(r.kind).toBe("sample");
    if (r.kind !== "sample") return;
    expect(r.sample).toMatchObject({ service: "svc", id: "abc" });
    expect(r.sample.endpoints[0]).toMatchObject({ name: "m", requests: 3, errors: 1 });
    expect(r.sample.endpoints[0]?.data?.latency[36]).toBe(3);
  });

  it("keeps the counters of an endpoint without (or with bad) data, without a histogram", () => {
    const r = readStatsReply(
      reply(
        doc({
          endpoints: [
            { name: "m", num_requests: 2, num_errors: 0, data: { latency_us: [[7.5, 1]] } },
          ],
        }),
      ),
    );
    expect(r.kind === "sample" && r.sample.endpoints[0]).toMatchObject({
      requests: 2,
      data: undefined,
    });
  });

  it("reports refusals from the agents' error headers", () => {
    for (const code of ["UNAUTHENTICATED", "FORBIDDEN"]) {
      const h = natsHeaders();
      h.set(Header.MeshError, code);
      h.set(Header.ServiceErrorCode, code === "FORBIDDEN" ? "403" : "401");
      expect(readStatsReply(reply({ code }, h))).toEqual({ kind: "refused", code });
    }
  });

  it.each([
    ["an empty body", ""],
    ["not JSON", "{"],
    ["not UTF-8", "\u00ff"],
    ["JSON null", "null"],
    ["another type", doc({ type: "io.nats.micro.v1.info_response" })],
    ["a service name with a dot", doc({ name: "a.b" })],
    ["an id with a wildcard", doc({ id: "*" })],
    ["endpoints not an array", doc({ endpoints: {} })],
    [
      "too many endpoints",
      doc({
        endpoints: Array.from({ length: PresenceLimits.maxMethods + 1 }, () => ({
          name: "m",
          num_requests: 0,
          num_errors: 0,
        })),
      }),
    ],
    ["a negative count", doc({ endpoints: [{ name: "m", num_requests: -1, num_errors: 0 }] })],
    ["a fractional count", doc({ endpoints: [{ name: "m", num_requests: 1.5, num_errors: 0 }] })],
    [
      "a count past 2^53",
      doc({ endpoints: [{ name: "m", num_requests: 2 ** 60, num_errors: 0 }] }),
    ],
    ["an endpoint without a name", doc({ endpoints: [{ num_requests: 1, num_errors: 0 }] })],
    ["an endpoint that is null", doc({ endpoints: [null] })],
  ])("refuses %s", (_what, body) => {
    const data = typeof body === "string" && body === "\u00ff" ? new Uint8Array([0xff]) : undefined;
    const msg = data === undefined ? reply(body) : { data, headers: undefined };
    expect(readStatsReply(msg)).toEqual({ kind: "invalid" });
  });

  it("refuses a reply over MAX_STATS_REPLY_BYTES before parsing it", () => {
    const big = JSON.stringify(doc({ pad: "x".repeat(MAX_STATS_REPLY_BYTES) }));
    expect(readStatsReply(reply(big))).toEqual({ kind: "invalid" });
  });
});
