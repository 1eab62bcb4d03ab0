import type { OutStream } from "./io.js";

/** ANSI colours the CLI uses. */
export const Color = { green: 32, yellow: 33, red: 31 } as const;
export type Color = (typeof Color)[keyof typeof Color];

/** Colours a piece of text, or returns it as is when colours are off. */
export type Paint = (color: Color, text: string) => string;

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Colours only for a person at a terminal: `stream` is a TTY and `NO_COLOR` is not set to a
 * non-empty value (no-color.org), so pipes, files and CI logs get plain text.
 */
export function colorsOn(stream: OutStream, env: Env): boolean {
  return stream.isTTY === true && (env.NO_COLOR === undefined || env.NO_COLOR === "");
}

/** A {@link Paint} for `stream`: colours when {@link colorsOn}, plain text otherwise. */
export function painter(stream: OutStream, env: Env): Paint {
  return colorsOn(stream, env)
    ? (color, text) => `\u001b[${color}m${text}\u001b[0m`
    : (_color, text) => text;
}
