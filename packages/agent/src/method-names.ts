import type { Msg } from "@nats-io/nats-core";
import { lastToken, rawSubject } from "@natsmesh/protocol/internal";

const DOT = 46;

/**
 * Finds the method a request names (the last token of its subject) by comparing the subject's
 * bytes with the agent's method names, so the subject of a call to a known method is never
 * decoded into a string. Anything else (an unknown method, a nats.js without message internals)
 * is decoded as before.
 */
export class MethodNames {
  /** Method names by byte length, as bytes and as the string the methods map is keyed by. */
  readonly #byLength = new Map<number, { bytes: Uint8Array; name: string }[]>();

  /** `names` are valid method names: `[A-Za-z0-9_-]+`, ASCII. */
  constructor(names: Iterable<string>) {
    for (const name of names) {
      const bytes = Buffer.from(name, "latin1");
      let list = this.#byLength.get(bytes.length);
      if (list === undefined) {
        list = [];
        this.#byLength.set(bytes.length, list);
      }
      list.push({ bytes, name });
    }
  }

  /** The last token of `msg`'s subject: one of the names when it matches, else decoded. */
  of(msg: Msg): string {
    const raw = rawSubject(msg);
    if (raw !== null) {
      const end = raw.length;
      // Method names are short: a loop back to the last dot beats a native lastIndexOf call.
      let from = end;
      while (from > 0 && raw[from - 1] !== DOT) from--;
      const list = this.#byLength.get(end - from);
      if (list !== undefined) {
        for (const { bytes, name } of list) {
          let i = 0;
          while (i < bytes.length && raw[from + i] === bytes[i]) i++;
          if (i === bytes.length) return name;
        }
      }
    }
    return lastToken(msg.subject);
  }
}
