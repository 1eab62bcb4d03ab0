import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import { assertJwks, type JsonWebKeySet, JWKS_KEY, registryBucket } from "@natsmesh/protocol";
import type { Command } from "../command.js";
import { ConnectMode, connectNats } from "../connect.js";
import { ExitCode, errorText, failure, inputError } from "../errors.js";
import { openJetStreamManager } from "../jetstream-manager.js";
import { kidsOf, readJwksFile } from "../jwks-file.js";

/** The registry bucket, created as a registry would create it when no registry has yet. */
async function openRegistryBucket(nc: NatsConnection, bucket: string): Promise<KV> {
  await openJetStreamManager(nc);
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
export const keysPublish: Command = {
  name: "keys publish",
  summary: 'Publish a JWKS to the registry bucket (key "jwks"), where --jwks kv reads it',
  description:
    `Puts the key set under the key "${JWKS_KEY}" of the <prefix>_registry bucket, creating the\n` +
    "bucket if no registry has yet. Registries and agents started with --jwks kv watch that key\n" +
    "and switch to the new keys without a restart. The whole set is replaced: to rotate, publish\n" +
    "a set holding the old and the new key (as keys generate leaves jwks.json), and later one\n" +
    "without the old key. Private, symmetric and empty key sets are refused.",
  arguments: [
    { name: "file", description: "The JWKS file (jwks.json from keys generate)", required: true },
  ],
  options: {},
  async run({ global, args, io }) {
    const file = args[0]!;
    const jwks: JsonWebKeySet = readJwksFile(file);
    if (jwks.keys.length === 0) {
      throw inputError(
        `the JWKS file ${file} holds no keys; publishing it would refuse every token`,
      );
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
  },
};
