import type { InstanceRecord } from "@natsmesh/protocol";
import type { PresenceWatchEvent } from "@natsmesh/sdk/internal";
import { Color, type Paint } from "./colors.js";

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
export function formatWatchLine(event: PresenceWatchEvent, at: Date, paint: Paint): string {
  const type = paint(COLORS[event.type], event.type.padEnd(6));
  const r = event.instance;
  if (event.type === "down") {
    return `${clock(at)}  ${type}  ${r.service}  ${r.id}  ${version(r.version)}\n`;
  }
  return `${clock(at)}  ${type}  ${r.service}  ${r.id}  ${details(r)}\n`;
}

/**
 * One JSON object per line: `{"type":"up","instance":{…}}` (or `update`), and
 * `{"type":"down","key":…,"service":…,"id":…}`.
 */
export function formatWatchJson(event: PresenceWatchEvent): string {
  if (event.type === "down") {
    const { type, key, instance } = event;
    return `${JSON.stringify({ type, key, service: instance.service, id: instance.id })}\n`;
  }
  return `${JSON.stringify({ type: event.type, instance: event.instance })}\n`;
}
