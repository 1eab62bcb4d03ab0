import type { OutStream } from "../io.js";

/** ANSI colours the CLI uses. */
export const Color = { green: 32, yellow: 33, red: 31 } as const;
export type Color = (typeof Color)[keyof typeof Color];

/** Colours a piece of text, or returns it as is when colours are off. */
export type Paint = (color: Color, text: string) => string;

/**
 * Colours only for a person at a terminal: `stream` is a TTY and `NO_COLOR` is not set to a
 * non-empty value (no-color.org), so pipes, files and CI logs get plain text.
 */
export function colorsOn(stream: OutStream): boolean {
  const noColor = process.env.NO_COLOR;
  return stream.isTTY === true && (noColor === undefined || noColor === "");
}

/** A {@link Paint} for `stream`: colours when {@link colorsOn}, plain text otherwise. */
export function painter(stream: OutStream): Paint {
  return colorsOn(stream)
    ? (color, text) => `\u001b[${color}m${text}\u001b[0m`
    : (_color, text) => text;
}
