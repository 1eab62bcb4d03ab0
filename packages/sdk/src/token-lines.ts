import { Header } from "@natsmesh/protocol";
import { tokenRef } from "@natsmesh/protocol/internal";

/** The header lines that carry one token: in full, and by reference. */
export interface TokenLines {
  readonly token: string;
  /** `Authorization: Bearer <token>`, with its CRLF. */
  readonly full: string;
  /** `Mesh-Token-Ref: <ref>`, with its CRLF; `undefined` when the token always goes in full. */
  readonly ref: string | undefined;
  /**
   * An agent has answered a call that carried the token in full, so agents hold it: calls send
   * the reference from now on. An agent that does not know it answers `unknown_ref`, and that
   * call alone sends the token again.
   */
  confirmed: boolean;
}

/** The lines of a call's own token, sent in full every time. */
export function ownTokenLines(token: string): TokenLines {
  return {
    token,
    full: `${Header.Authorization}: Bearer ${token}\r\n`,
    ref: undefined,
    confirmed: false,
  };
}

/**
 * The lines of the mesh's token, kept while the token stays the same: a ~400-character JWT on
 * every request was the largest cost of a call with auth on (docs/benchmarks.md), and an agent
 * that verified the token once accepts its 22-character reference after that.
 */
export class MeshTokenLines {
  #lines: TokenLines | undefined;

  /** The lines of `token`, made again (unconfirmed) when the mesh's token changed. */
  of(token: string): TokenLines {
    let lines = this.#lines;
    if (lines === undefined || lines.token !== token) {
      lines = {
        token,
        full: `${Header.Authorization}: Bearer ${token}\r\n`,
        ref: `${Header.TokenRef}: ${tokenRef(token)}\r\n`,
        confirmed: false,
      };
      this.#lines = lines;
    }
    return lines;
  }
}
