import type { InstanceRecord } from "@natsmesh/protocol";
import { Color, type Paint } from "./colors.js";

/** A change seen by `natsmesh watch`. */
export type WatchEvent =
  | { type: "up" | "update"; instance: InstanceRecord }
  | { type: "down"; key: string; service: string; id: string; instance?: InstanceRecord };

const COLORS = { up: Color.green, update: Color.yellow, down: Color.red } as const;

function clock(at: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  const ms = String(at.getMilliseconds()).padStart(3, "0");
  return `${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}.${ms}`;
}

function version(v: string): string {
  return /^\d/.test(v) ? `v${v}` : v;
}

function details(r: InstanceRecord): string {
  const zone = r.zone === undefined ? "" : ` zone=${r.zone}`;
  return `${version(r.version)} weight=${r.weight} ${r.status}${zone}`;
}

/**
 * One line per event, local time first:
 * `12:03:04.567  up      echo  <id>  v1.0.0 weight=100 ready zone=z1`.
 */
export function formatWatchLine(event: WatchEvent, at: Date, paint: Paint): string {
  const type = paint(COLORS[event.type], event.type.padEnd(6));
  if (event.type === "down") {
    const last = event.instance === undefined ? "" : `  ${version(event.instance.version)}`;
    return `${clock(at)}  ${type}  ${event.service}  ${event.id}${last}\n`;
  }
  const r = event.instance;
  return `${clock(at)}  ${type}  ${r.service}  ${r.id}  ${details(r)}\n`;
}

/**
 * One JSON object per line: `{"type":"up","instance":{…}}` (or `update`), and
 * `{"type":"down","key":…,"service":…,"id":…}`.
 */
export function formatWatchJson(event: WatchEvent): string {
  if (event.type === "down") {
    const { type, key, service, id } = event;
    return `${JSON.stringify({ type, key, service, id })}\n`;
  }
  return `${JSON.stringify({ type: event.type, instance: event.instance })}\n`;
}
