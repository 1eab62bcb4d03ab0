import { Kvm } from "@nats-io/kv";
import { PresenceLimits, presenceBucket } from "@natsmesh/protocol";
import { type Registry, startRegistry } from "@natsmesh/registry";
import {
  cleanup,
  floodRecord,
  heapAfterGcMiB as heapMiB,
  presenceFlood,
  setup,
  type TestSetup,
  uniquePrefix,
  waitUntil,
} from "@natsmesh/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Without quotas, 50,000 fake ids grew the registry to ~200 MB, 6,000 records of 25 KB to
// 632 MB. Quotas bound what it keeps, whatever is announced.

const QUOTAS = { maxRecords: 1000, maxInstancesPerService: 200 } as const;
/** Far above what the kept records cost (2 MiB), far below what 50,000 cost without quotas (45 MiB). */
const HEAP_BOUND_MIB = 16;

let t: TestSetup;
beforeAll(async () => {
  t = await setup();
});
afterAll(() => cleanup(t));

/**
 * Announces `count` fake instances spread over `services` services, in batches that wait until
 * the registry has taken each in (so neither side buffers a flood); returns the bytes sent.
 */
async function announce(
  registry: Registry,
  prefix: string,
  count: number,
  services: number,
  big = false,
): Promise<number> {
  const seen = () => registry.stats.announcements + registry.stats.invalid;
  const start = seen();
  let bytes = 0;
  let end = 0;
  for (const records of presenceFlood(prefix, { count, services, big, batch: big ? 250 : 5000 })) {
    for (const instance of records) {
      const body = JSON.stringify({ kind: "up", instance });
      bytes += body.length;
      t.nc.publish(`${prefix}.presence.${instance.service}.${instance.id}`, body);
    }
    end += records.length;
    await t.nc.flush();
    const ok = await waitUntil(() => seen() - start >= end, { timeoutMs: 60_000, intervalMs: 20 });
    expect(ok, `the registry took in ${seen() - start} of ${end} announcements`).toBe(true);
  }
  return bytes;
}

async function keyCount(prefix: string): Promise<number> {
  return (await (await new Kvm(t.nc).open(presenceBucket(prefix))).status()).values;
}

describe("presence quotas in the registry", () => {
  it("50,000 fake ids: the table and the bucket hold maxRecords, the rest is refused and counted", async () => {
    const prefix = uniquePrefix("quota");
    const registry = await startRegistry({
      servers: t.server.url,
      prefix,
      heartbeatTimeoutMs: 120_000,
      quotas: QUOTAS,
    });
    try {
      const before = heapMiB();
      const started = performance.now();
      const bytes = await announce(registry, prefix, 50_000, 100);
      const took = Math.round(performance.now() - started);
      const { instances, overQuota } = registry.stats;
      expect(instances).toBe(QUOTAS.maxRecords);
      expect(overQuota).toBe(50_000 - QUOTAS.maxRecords);
      expect(
        await waitUntil(async () => (await keyCount(prefix)) === QUOTAS.maxRecords, {
          timeoutMs: 30_000,
        }),
      ).toBe(true);
      const grew = heapMiB() - before;
      console.info(
        `[quota] 50,000 fake ids (${(bytes / 2 ** 20).toFixed(1)} MiB) in ${took} ms: ${instances} kept, ${overQuota} refused, heap +${grew.toFixed(1)} MiB`,
      );
      expect(grew).toBeLessThan(HEAP_BOUND_MIB);
    } finally {
      await registry.stop();
    }
  });

  it("6,000 records of 25 KB: none is kept or written, each is refused and counted", async () => {
    const prefix = uniquePrefix("quotab");
    const registry = await startRegistry({
      servers: t.server.url,
      prefix,
      heartbeatTimeoutMs: 120_000,
    });
    try {
      const size = JSON.stringify(floodRecord(prefix, 0, 10, true)).length;
      expect(size).toBeGreaterThan(24_000);
      expect(size).toBeLessThan(PresenceLimits.maxMessageBytes);
      const before = heapMiB();
      const started = performance.now();
      const bytes = await announce(registry, prefix, 6000, 10, true);
      const took = Math.round(performance.now() - started);
      expect(registry.stats.instances).toBe(0);
      expect(registry.stats.overQuota).toBe(6000);
      expect(registry.stats.kvPuts).toBe(0);
      expect(await keyCount(prefix)).toBe(0);
      const grew = heapMiB() - before;
      console.info(
        `[quota] 6,000 records of ${size} bytes (${(bytes / 2 ** 20).toFixed(0)} MiB) in ${took} ms: 0 kept, heap +${grew.toFixed(1)} MiB`,
      );
      expect(grew).toBeLessThan(HEAP_BOUND_MIB);
    } finally {
      await registry.stop();
    }
  });

  it("refuses heartbeats of unknown instances once the table is full, and counts them", async () => {
    const prefix = uniquePrefix("quotah");
    const registry = await startRegistry({
      servers: t.server.url,
      prefix,
      heartbeatTimeoutMs: 120_000,
      quotas: { maxRecords: 10 },
    });
    try {
      for (let i = 0; i < 100; i++) {
        const hb = {
          kind: "hb",
          service: "svc",
          id: `HB${i}`,
          seq: 1,
          inflight: 0,
          status: "ready",
        };
        t.nc.publish(`${prefix}.presence.svc.HB${i}`, JSON.stringify(hb));
      }
      expect(await waitUntil(() => registry.stats.heartbeats === 100, { timeoutMs: 10_000 })).toBe(
        true,
      );
      expect(registry.stats.overQuota).toBe(90);
    } finally {
      await registry.stop();
    }
  });

  it("refuses quotas that are not whole numbers in range, before connecting", async () => {
    for (const quotas of [
      { maxRecords: 0 },
      { maxInstancesPerService: 1.5 },
      { maxRecordBytes: 100 },
      { maxRecordBytes: 65 * 1024 },
    ]) {
      await expect(startRegistry({ servers: "nats://127.0.0.1:1", quotas })).rejects.toBeInstanceOf(
        TypeError,
      );
    }
  });
});
