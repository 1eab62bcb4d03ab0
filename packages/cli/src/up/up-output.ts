import { relative } from "node:path";
import { type InstanceRecord, subjects } from "@natsmesh/protocol";
import type { PresenceWatchEvent } from "@natsmesh/sdk/internal";
import type { Io } from "../io.js";
import { painter } from "../output/colors.js";
import { renderInstances } from "../output/instances.js";
import { formatWatchJson, formatWatchLine } from "../output/watch-event.js";
import type { DemoCall } from "./demo-calls.js";
import type { MeshNats } from "./find-nats.js";

/** What `natsmesh up` tells once the mesh runs. */
export interface UpReady {
  readonly nats: MeshNats;
  readonly prefix: string;
  readonly dashboard: string;
  readonly instances: readonly InstanceRecord[];
  /** With `--auth`: the caller token and where it is kept. */
  readonly token?: { readonly value: string; readonly file: string; readonly jwks: string };
  /** With `--auth`: the registry's public presence keys, for callers (`MESH_PRESENCE_KEYS`). */
  readonly presenceKeys?: string;
  /** A service module to run with `natsmesh agent` in the suggestions. */
  readonly exampleModule: string;
}

function where(nats: MeshNats): string {
  switch (nats.source) {
    case "given":
      return "(from NATS_URL / --server)";
    case "local":
      return "(the JetStream server already running there)";
    case "started":
      return `(nats-server started here, pid ${nats.server?.pid}, store ${nats.store})`;
  }
}

/** A shell word: quoted unless it is plain. */
function shellWord(text: string): string {
  return /^[\w./:=@-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The variables another terminal needs to reach this mesh, or none when the defaults do. */
function exports(r: UpReady): string[] {
  const vars: string[] = [];
  if (r.nats.url !== "nats://127.0.0.1:4222") vars.push(`NATS_URL=${shellWord(r.nats.url)}`);
  if (r.prefix !== "mesh") vars.push(`MESH_PREFIX=${r.prefix}`);
  if (r.token !== undefined) vars.push(`MESH_TOKEN_FILE=${shellWord(relative(".", r.token.file))}`);
  if (r.presenceKeys !== undefined) {
    vars.push(`MESH_PRESENCE_KEYS=${shellWord(relative(".", r.presenceKeys))}`);
  }
  return vars.length === 0 ? [] : [`export ${vars.join(" ")}`];
}

/**
 * Prints for people, or one JSON object per line with `--json`: `ready`, then each demo `call`,
 * then presence changes as `natsmesh watch --json` prints them, then `stopped`.
 */
export class UpOutput {
  readonly #io: Io;
  readonly #json: boolean;

  constructor(io: Io, json: boolean) {
    this.#io = io;
    this.#json = json;
  }

  #line(text: string): void {
    this.#io.stdout.write(`${text}\n`);
  }

  #object(value: Record<string, unknown>): void {
    this.#io.stdout.write(`${JSON.stringify(value)}\n`);
  }

  /** A step on the way up (people only). */
  step(text: string): void {
    if (!this.#json) this.#line(`natsmesh up: ${text}`);
  }

  ready(r: UpReady): void {
    if (this.#json) {
      this.#object({
        type: "ready",
        pid: process.pid,
        prefix: r.prefix,
        nats: {
          url: r.nats.url,
          source: r.nats.source,
          ...(r.nats.server === undefined ? {} : { pid: r.nats.server.pid, store: r.nats.store }),
        },
        dashboard: r.dashboard,
        auth: r.token !== undefined,
        ...(r.token === undefined
          ? {}
          : { token: r.token.value, tokenFile: r.token.file, jwks: r.token.jwks }),
        ...(r.presenceKeys === undefined ? {} : { presenceKeys: r.presenceKeys }),
        instances: r.instances,
      });
      return;
    }
    this.#line(`natsmesh up: NATS ${r.nats.url} ${where(r.nats)}, prefix ${r.prefix}`);
    this.#line(`natsmesh up: dashboard ${r.dashboard}`);
    if (r.token !== undefined) {
      this.#line(
        `natsmesh up: auth on: public keys ${r.token.jwks}; a caller token (12 h, also in ${r.token.file}):`,
      );
      this.#line(r.token.value);
    }
    if (r.presenceKeys !== undefined) {
      this.#line(`natsmesh up: presence records signed; their public key: ${r.presenceKeys}`);
    }
    this.#line("");
    this.#io.stdout.write(renderInstances(r.instances, Date.now()));
  }

  calls(calls: readonly DemoCall[]): void {
    if (this.#json) {
      for (const c of calls) this.#object({ type: "call", ...c });
      return;
    }
    this.#line("");
    this.#line("A few calls:");
    const width = Math.max(...calls.map((c) => c.call.length));
    for (const c of calls) {
      const outcome =
        c.error === undefined
          ? (c.summary ?? JSON.stringify(c.reply))
          : `${c.error.code}: ${c.error.message}`;
      this.#line(`  natsmesh call ${c.call.padEnd(width)}  → ${outcome}  (${c.ms} ms)`);
    }
  }

  nextSteps(r: UpReady): void {
    if (this.#json) return;
    const auth = r.token === undefined ? "" : ' -H "Authorization:Bearer $(cat $MESH_TOKEN_FILE)"';
    const lines = [
      "",
      "Try it from another terminal, in this directory:",
      ...exports(r).map((l) => `  ${l}`),
      `  npx natsmesh call greeter.hello '{"name":"you"}'`,
      `  npx natsmesh call echo.say '{"hi":1}' --balance weighted --json`,
      "  npx natsmesh ls                 # the instances in the presence bucket",
      "  npx natsmesh watch              # instances coming and going, live",
      `  npx natsmesh agent ${r.exampleModule} --weight 5   # one more echo; stop it with Ctrl-C`,
      `  nats req${auth} ${subjects(r.prefix).service("greeter", "hello")} '{"name":"you"}'   # any NATS client, JSON`,
      `  open ${r.dashboard}`,
      "Ctrl-C here drains every instance and stops what natsmesh up started.",
      "",
      "Presence changes:",
    ];
    for (const l of lines) this.#line(l);
  }

  presence(event: PresenceWatchEvent): void {
    this.#io.stdout.write(
      this.#json
        ? formatWatchJson(event)
        : formatWatchLine(event, new Date(), painter(this.#io.stdout)),
    );
  }

  stopped(): void {
    if (this.#json) this.#object({ type: "stopped" });
    else this.#line("natsmesh up: stopped");
  }
}
