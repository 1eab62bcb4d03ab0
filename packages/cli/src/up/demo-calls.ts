import { type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import { Header, isMeshError } from "@natsmesh/protocol";
import type { Mesh } from "@natsmesh/sdk";
import { errorText } from "../errors.js";

/** One demo call of `natsmesh up` and how it went. */
export interface DemoCall {
  /** `natsmesh call` words that do the same: `greeter.hello '{"name":"natsmesh"}'`. */
  readonly call: string;
  readonly reply?: unknown;
  readonly error?: { readonly code: string; readonly message: string };
  readonly ms: number;
  /** The outcome in a few words, for people, when the reply would say it less well. */
  readonly summary?: string;
}

/** How many `echo.say` calls show the weights at work. */
const WEIGHTED_CALLS = 60;

/** An echo instance and its weight. */
export interface EchoInstance {
  readonly id: string;
  readonly weight: number;
}

async function timed(call: string, run: () => Promise<unknown>): Promise<DemoCall> {
  const started = performance.now();
  try {
    const reply = await run();
    return { call, reply: reply ?? null, ms: Math.round(performance.now() - started) };
  } catch (err) {
    const ms = Math.round(performance.now() - started);
    if (isMeshError(err)) return { call, error: { code: err.code, message: err.message }, ms };
    return { call, error: { code: "ERROR", message: errorText(err) }, ms };
  }
}

/**
 * Calls `echo.say` handled so far by one instance, from its `$SRV.STATS` (NATS micro
 * discovery, which any NATS tool can ask too); `undefined` when it does not answer.
 */
async function handled(
  nc: NatsConnection,
  id: string,
  token: string | undefined,
): Promise<number | undefined> {
  const h = natsHeaders();
  if (token !== undefined) h.set(Header.Authorization, `Bearer ${token}`);
  try {
    const reply = await nc.request(`$SRV.STATS.echo.${id}`, undefined, {
      timeout: 2_000,
      headers: h,
    });
    const stats = reply.json<{ endpoints?: { name?: unknown; num_requests?: unknown }[] }>();
    const say = stats.endpoints?.find((e) => e.name === "say")?.num_requests;
    return typeof say === "number" ? say : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A few calls that show the mesh at work: a nested call (greeter → echo), an error code from a
 * handler, weighted balancing over the two echo instances, a deadline cutting a slow call
 * short, and a method that emits an event.
 */
export async function runDemoCalls(
  mesh: Mesh,
  echo: readonly EchoInstance[],
  token: string | undefined,
): Promise<DemoCall[]> {
  const calls: DemoCall[] = [];
  calls.push(
    await timed(`greeter.hello '{"name":"natsmesh"}'`, () =>
      mesh.request("greeter", "hello", { name: "natsmesh" }),
    ),
  );
  calls.push(
    await timed(`greeter.hello '{"name":42}'`, () =>
      mesh.request("greeter", "hello", { name: 42 }),
    ),
  );
  const nc = mesh.connection;
  // Weighted picks from the presence view: have it loaded first. `up` connected the mesh once
  // both echo instances were in the bucket, so its snapshot holds them; if it does not come in
  // time, the calls go to the queue subject and the spread shows it.
  await mesh.ready({ timeout: 5_000 }).catch(() => undefined);
  const before = await Promise.all(echo.map((e) => handled(nc, e.id, token)));
  const weighted = await timed(
    `echo.say '{"n":1}' --balance weighted  (×${WEIGHTED_CALLS})`,
    async () => {
      await Promise.all(
        Array.from({ length: WEIGHTED_CALLS }, (_, n) =>
          mesh.request("echo", "say", { n }, { balance: "weighted" }),
        ),
      );
      const after = await Promise.all(echo.map((e) => handled(nc, e.id, token)));
      return echo.map((e, i) => ({
        instance: e.id,
        weight: e.weight,
        calls: (after[i] ?? 0) - (before[i] ?? 0),
      }));
    },
  );
  const spread = weighted.reply as { weight: number; calls: number }[] | undefined;
  calls.push(
    spread === undefined
      ? weighted
      : {
          ...weighted,
          summary: spread.map((s) => `weight ${s.weight}: ${s.calls} calls`).join(", "),
        },
  );
  calls.push(
    await timed(`slow.work '{"ms":300}' --timeout 100`, () =>
      mesh.request("slow", "work", { ms: 300 }, { timeout: 100 }),
    ),
  );
  calls.push(
    await timed(`orders.place '{"item":"tea"}'`, () =>
      mesh.request("orders", "place", { item: "tea" }),
    ),
  );
  return calls;
}
