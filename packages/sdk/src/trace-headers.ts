import { Header } from "@natsmesh/protocol";
import { childTraceparent } from "@natsmesh/protocol/internal";

/**
 * The `traceparent` an outgoing call or event carries, or `undefined` for none: the one place
 * the SDK decides trace headers. A caller that propagates a trace (a `traceparent` among its
 * headers, as nested calls made through `ctx.mesh` do) gets a new span in that trace, a new trace
 * when the value is invalid. Otherwise nothing is sent: 70 bytes per request that nothing would
 * read, and the agent starts a trace of its own when a handler asks for `ctx.traceparent`.
 */
export function outgoingTraceparent(
  headers: Record<string, string> | undefined,
): string | undefined {
  const parent = headers?.[Header.TraceParent];
  return parent === undefined ? undefined : childTraceparent(parent);
}
