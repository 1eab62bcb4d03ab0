import { hostname } from "node:os";
import { type InstanceRecord, subjects, validateInstanceRecord } from "@natsmesh/protocol";
import type { ResolvedAgentOptions } from "./options.js";

/** What an agent's record is made of, besides its id. */
export type RecordSource = Pick<
  ResolvedAgentOptions,
  "prefix" | "service" | "version" | "weight" | "methods" | "zone" | "metadata" | "events"
>;

/**
 * `record` as the protocol validates it, which is how registries and clients will read it, or
 * a `TypeError` with the protocol's reason; `where` names the call that made it.
 */
export function checkedRecord(
  record: InstanceRecord,
  prefix: string,
  where: string,
): InstanceRecord {
  const checked = validateInstanceRecord(record, prefix);
  if (!checked.ok)
    throw new TypeError(`${where}: ${checked.error.message}`, { cause: checked.error });
  return checked.value;
}

/** The record instance `id` of the agent configured by `o` announces as it starts. */
export function instanceRecord(o: RecordSource, id: string): InstanceRecord {
  const record: InstanceRecord = {
    v: 1,
    id,
    service: o.service,
    version: o.version,
    weight: o.weight,
    status: "ready",
    methods: [...o.methods.keys()],
    subject: subjects(o.prefix).instanceBase(o.service, id),
    host: hostname().slice(0, 255),
    pid: process.pid,
    ...(o.zone === undefined ? {} : { zone: o.zone }),
    metadata: o.metadata,
    startedAt: Date.now(),
    ...(o.events.length === 0
      ? {}
      : { events: o.events.map((e) => ({ pattern: e.pattern, mode: e.mode })) }),
  };
  return checkedRecord(record, o.prefix, "startAgent");
}
