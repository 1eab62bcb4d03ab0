import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { assertJwks, type JsonWebKeySet, JWKS_KEY, registryBucket } from "@natsmesh/protocol";
import { ExitCode, errorText, failure, inputError } from "../errors.js";
import { kidsOf, readJwksFile } from "../files/jwks-file.js";
import type { Io } from "../io.js";
import { ConnectMode, connectNats } from "../nats/connect.js";
import { requireJetStream } from "../nats/require-jetstream.js";
import type { GlobalOptions } from "../program.js";

/** The registry bucket, created as a registry would create it when no registry has yet. */
async function openRegistryBucket(nc: NatsConnection, bucket: string): Promise<KV> {
  await requireJetStream(nc);
  try {
    return await new Kvm(nc).create(bucket, {
      history: 1,
      storage: "file",
      description: "natsmesh registry",
    });
  } catch (err) {
    throw failure(`cannot open the KV bucket ${bucket}: ${errorText(err)}`, err);
  }
}

/** The kids of the key set now in the bucket, `undefined` if there is none (or not a valid one). */
async function publishedKids(kv: KV): Promise<string[] | undefined> {
  const entry = await kv.get(JWKS_KEY);
  if (entry === null || entry.operation !== "PUT") return undefined;
  try {
    const value: unknown = entry.json();
    assertJwks(value);
    return kidsOf(value);
  } catch {
    return undefined;
  }
}

function difference(a: readonly string[], b: readonly string[]): string[] {
  return a.filter((x) => !b.includes(x));
}

/** `natsmesh keys publish FILE`: puts a JWKS where `--jwks kv` registries and agents read it. */
export async function keysPublish(global: GlobalOptions, file: string, io: Io): Promise<number> {
  const jwks: JsonWebKeySet = readJwksFile(file);
  if (jwks.keys.length === 0) {
    throw inputError(`the JWKS file ${file} holds no keys; publishing it would refuse every token`);
  }
  const kids = kidsOf(jwks);
  const nc = await connectNats(global, "keys-publish", ConnectMode.once);
  try {
    const bucket = registryBucket(global.prefix);
    const kv = await openRegistryBucket(nc, bucket);
    const before = await publishedKids(kv);
    let revision: number;
    try {
      revision = await kv.put(JWKS_KEY, JSON.stringify(jwks));
    } catch (err) {
      throw failure(`cannot write the key "${JWKS_KEY}" of ${bucket}: ${errorText(err)}`, err);
    }
    if (global.json) {
      io.stdout.write(
        `${JSON.stringify({ bucket, key: JWKS_KEY, revision, kids, previousKids: before ?? [] }, null, 2)}\n`,
      );
      return ExitCode.ok;
    }
    const lines = [
      `published ${kids.length} key${kids.length === 1 ? "" : "s"} to bucket ${bucket}, key "${JWKS_KEY}" (revision ${revision})`,
      ...kids.map((kid) => `  ${kid}`),
    ];
    if (before !== undefined) {
      const added = difference(kids, before);
      const removed = difference(before, kids);
      if (added.length > 0) lines.push(`added:   ${added.join(", ")}`);
      if (removed.length > 0) {
        lines.push(`removed: ${removed.join(", ")} (tokens signed with these no longer verify)`);
      }
      if (added.length === 0 && removed.length === 0) lines.push("(the same keys as before)");
    }
    io.stdout.write(`${lines.join("\n")}\n`);
    return ExitCode.ok;
  } finally {
    await nc.close();
  }
}
