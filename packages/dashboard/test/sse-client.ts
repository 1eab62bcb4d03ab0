import { type ClientRequest, get, type IncomingMessage } from "node:http";
import { waitUntil } from "@natsmesh/testing";

/** One server-sent event as received. */
export interface ReceivedEvent {
  event: string;
  data: unknown;
}

/** A test's view of an event stream: everything received so far, and waits on it. */
export interface EventStream {
  readonly response: IncomingMessage;
  readonly events: ReceivedEvent[];
  /** Resolves with the first event (from the start) that matches, or rejects after `timeoutMs`. */
  find(match: (e: ReceivedEvent) => boolean, timeoutMs?: number): Promise<ReceivedEvent>;
  close(): void;
}

/** Opens `url` as an event stream and parses it (`event:` and `data:` lines, blank-line ends). */
export function openEvents(
  url: string,
  headers: Record<string, string> = {},
): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const req: ClientRequest = get(url, { headers }, (response) => {
      const events: ReceivedEvent[] = [];
      let buffer = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf("\n\n"); end !== -1; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = "message";
          let data: string | undefined;
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data = line.slice(6);
          }
          if (data !== undefined) events.push({ event, data: JSON.parse(data) });
        }
      });
      response.on("error", () => undefined);
      resolve({
        response,
        events,
        async find(match, timeoutMs = 10_000) {
          const ok = await waitUntil(() => events.some(match), { timeoutMs });
          if (!ok) {
            const got = events.map((e) => e.event).join(", ");
            throw new Error(`no matching event within ${timeoutMs} ms; got ${got}`);
          }
          return events.find(match)!;
        },
        close: () => req.destroy(),
      });
    });
    req.on("error", reject);
  });
}
