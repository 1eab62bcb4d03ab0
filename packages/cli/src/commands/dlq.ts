import { jetstream } from "@nats-io/jetstream";
import type { MsgHdrs } from "@nats-io/nats-core";
import { codecForContentType, Header, isMeshError } from "@natsmesh/protocol";
import {
  getDeadLetter,
  listDeadLetters,
  purgeDeadLetters,
  replayDeadLetter,
  type StoredDeadLetter,
} from "@natsmesh/protocol/internal";
import { ExitCode, failure, usageError } from "../errors.js";
import { type Io, note } from "../io.js";
import { ConnectMode, connectNats } from "../nats/connect.js";
import { requireJetStream } from "../nats/require-jetstream.js";
import { formatAge } from "../output/age.js";
import { renderTable } from "../output/table.js";
import type { GlobalOptions } from "../program.js";

const HEADER = ["SEQ", "SERVICE", "EVENT", "CODE", "DELIVERIES", "AGE", "MESSAGE"] as const;

/** A dead letter for `--json` and `dlq ls`: its fields, without payload and headers. */
function summary(l: StoredDeadLetter) {
  if (!l.valid) return { dlqSeq: l.dlqSeq, valid: false, subject: l.dlqSubject, time: l.time };
  const { headers: _h, data, ...rest } = l;
  return { ...rest, bytes: data.length };
}

function row(l: StoredDeadLetter, now: number): string[] {
  const age = formatAge(now - l.time.getTime());
  if (!l.valid)
    return [String(l.dlqSeq), "?", l.dlqSubject, "(not a natsmesh dead letter)", "-", age, "-"];
  const message = l.message.length > 60 ? `${l.message.slice(0, 59)}…` : l.message;
  return [String(l.dlqSeq), l.service, l.event, l.code, String(l.deliveries), age, message];
}

/** Options of `natsmesh dlq ls`. */
export interface DlqLsOptions {
  service?: string;
  from: number;
  limit: number;
}

/** `natsmesh dlq ls`: the dead letters in stream order, as a table or JSON. */
export async function dlqLs(global: GlobalOptions, o: DlqLsOptions, io: Io): Promise<number> {
  const nc = await connectNats(global, "dlq-ls", ConnectMode.once);
  try {
    const jsm = await requireJetStream(nc);
    const letters = await listDeadLetters(jsm, global.prefix, {
      fromSeq: o.from,
      limit: o.limit,
      ...(o.service === undefined ? {} : { service: o.service }),
    }).catch(notFound);
    if (global.json) {
      io.stdout.write(`${JSON.stringify(letters.map(summary), null, 2)}\n`);
    } else if (letters.length === 0) {
      io.stdout.write("no dead letters\n");
    } else {
      const now = Date.now();
      io.stdout.write(
        renderTable(
          HEADER,
          letters.map((l) => row(l, now)),
        ),
      );
      if (letters.length === o.limit) {
        note(io, `showing the first ${o.limit}; more with --from ${letters.at(-1)!.dlqSeq + 1}`);
      }
    }
    return ExitCode.ok;
  } finally {
    await nc.close();
  }
}

/** A missing dead-letter stream is an empty one. */
function notFound(err: unknown): StoredDeadLetter[] {
  if (err instanceof Error && err.name === "StreamNotFoundError") return [];
  throw err;
}

/** Headers for people: the bearer token is a secret and never printed. */
function visibleHeaders(h: MsgHdrs | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (h === undefined) return out;
  for (const [name, values] of h) {
    out[name] =
      name.toLowerCase() === Header.Authorization.toLowerCase()
        ? values.map(() => "Bearer <redacted>")
        : values;
  }
  return out;
}

/** The payload decoded by its content type, or its bytes in base64 when it does not decode. */
function payloadOf(l: StoredDeadLetter & { valid: true }): { payload?: unknown; base64?: string } {
  const codec = codecForContentType(l.headers?.get(Header.ContentType) || undefined);
  try {
    if (codec !== undefined) return { payload: codec.decode(l.data) };
  } catch {
    // Shown as bytes below: undecodable payloads are a common reason to be here.
  }
  return { base64: Buffer.from(l.data).toString("base64") };
}

/** `natsmesh dlq show <seq>`: one dead letter with its headers (token redacted) and payload. */
export async function dlqShow(global: GlobalOptions, seq: number, io: Io): Promise<number> {
  const nc = await connectNats(global, "dlq-show", ConnectMode.once);
  try {
    const jsm = await requireJetStream(nc);
    const l = await getDeadLetter(jsm, global.prefix, seq);
    if (l === undefined) throw failure(`no dead letter at sequence ${seq}`);
    if (!l.valid) {
      throw failure(`the message at ${seq} (${l.dlqSubject}) is not a natsmesh dead letter`);
    }
    const shown = { ...summary(l), headers: visibleHeaders(l.headers), ...payloadOf(l) };
    if (global.json) {
      io.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
      return ExitCode.ok;
    }
    const lines = [
      `dead letter ${l.dlqSeq}: ${l.service} gave up on ${l.event} (${l.subject} #${l.seq})`,
      `  error:      ${l.code}: ${l.message}`,
      `  deliveries: ${l.deliveries}`,
      `  event id:   ${l.eventId ?? "-"}`,
      `  stored:     ${l.time.toISOString()}`,
      `  replayable: ${l.replayable ? "yes" : "no (its subject is not an event subject)"}`,
      "  headers:",
      ...Object.entries(shown.headers).flatMap(([k, vs]) => vs.map((v) => `    ${k}: ${v}`)),
      shown.base64 === undefined
        ? `  payload:    ${JSON.stringify(shown.payload, null, 2)?.replaceAll("\n", "\n  ") ?? "(none)"}`
        : `  payload (base64, does not decode): ${shown.base64}`,
    ];
    io.stdout.write(`${lines.join("\n")}\n`);
    return ExitCode.ok;
  } finally {
    await nc.close();
  }
}

/** Options of `natsmesh dlq replay`. */
export interface DlqReplayOptions {
  /** Every dead letter of this service. */
  service?: string;
}

/** Most dead letters one `dlq replay --service` replays. */
const MAX_REPLAY = 10_000;

/**
 * `natsmesh dlq replay <seq…> | --service S`: emits each dead letter again for the service that
 * gave up on it, then removes it. With --token/MESH_TOKEN, the replay carries that token.
 */
export async function dlqReplay(
  global: GlobalOptions,
  seqs: readonly number[],
  o: DlqReplayOptions,
  io: Io,
): Promise<number> {
  if ((seqs.length === 0) === (o.service === undefined)) {
    throw usageError("give the sequence numbers to replay, or --service (not both)");
  }
  const nc = await connectNats(global, "dlq-replay", ConnectMode.once);
  try {
    const jsm = await requireJetStream(nc);
    const js = jetstream(nc);
    const targets =
      o.service === undefined
        ? seqs
        : (
            await listDeadLetters(jsm, global.prefix, {
              service: o.service,
              limit: MAX_REPLAY,
            }).catch(notFound)
          ).map((l) => l.dlqSeq);
    const authorization = global.token === undefined ? undefined : `Bearer ${global.token}`;
    const done: { dlqSeq: number; seq: number; id: string }[] = [];
    const failed: { dlqSeq: number; error: string }[] = [];
    for (const dlqSeq of targets) {
      try {
        done.push(await replayDeadLetter(js, jsm, global.prefix, dlqSeq, authorization));
      } catch (err) {
        const error = isMeshError(err) ? `${err.code}: ${err.message}` : String(err);
        failed.push({ dlqSeq, error });
      }
    }
    if (global.json) {
      io.stdout.write(`${JSON.stringify({ replayed: done, failed }, null, 2)}\n`);
    } else {
      for (const r of done)
        io.stdout.write(`replayed dead letter ${r.dlqSeq} as event #${r.seq}\n`);
      for (const f of failed) note(io, `dead letter ${f.dlqSeq} not replayed: ${f.error}`);
      if (targets.length === 0) io.stdout.write("no dead letters to replay\n");
    }
    return failed.length === 0 ? ExitCode.ok : ExitCode.failure;
  } finally {
    await nc.close();
  }
}

/** Options of `natsmesh dlq purge`. */
export interface DlqPurgeOptions {
  service?: string;
  event?: string;
  all?: boolean;
}

/** `natsmesh dlq purge --service S [--event E] | --all`: removes dead letters for good. */
export async function dlqPurge(global: GlobalOptions, o: DlqPurgeOptions, io: Io): Promise<number> {
  if (o.service === undefined && o.all !== true) {
    throw usageError("say what to purge: --service <name> [--event <event>], or --all");
  }
  if (o.event !== undefined && o.service === undefined) {
    throw usageError("--event needs --service");
  }
  const nc = await connectNats(global, "dlq-purge", ConnectMode.once);
  try {
    const jsm = await requireJetStream(nc);
    const purged = await purgeDeadLetters(jsm, global.prefix, {
      ...(o.service === undefined ? {} : { service: o.service }),
      ...(o.event === undefined ? {} : { event: o.event }),
    }).catch((err: unknown) => {
      if (err instanceof Error && err.name === "StreamNotFoundError") return 0;
      throw err;
    });
    io.stdout.write(
      global.json ? `${JSON.stringify({ purged })}\n` : `purged ${purged} dead letters\n`,
    );
    return ExitCode.ok;
  } finally {
    await nc.close();
  }
}
