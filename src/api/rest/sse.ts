import type { FastifyReply, FastifyRequest } from "fastify";
import { sseFrame } from "../../notify/index.js";

/** How often an idle event stream sends a comment, so proxies keep it open. */
const KEEPALIVE_MS = 15_000;

export interface SseEvent {
  event: string;
  data: unknown;
}

/**
 * Answers with a server-sent event stream of `events` (given an abort signal that fires when the client
 * goes away); an error ends the stream with an `error` event.
 */
export async function sendEventStream(
  req: FastifyRequest,
  reply: FastifyReply,
  events: (signal: AbortSignal) => AsyncIterable<SseEvent>,
): Promise<void> {
  const abort = new AbortController();
  reply.raw.on("close", () => abort.abort());
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  const keepalive = setInterval(() => res.write(": keepalive\n\n"), KEEPALIVE_MS);
  let n = 0;
  try {
    for await (const e of events(abort.signal)) res.write(sseFrame(e, ++n));
  } catch (e) {
    req.log.warn(e);
    res.write(sseFrame({ event: "error", data: { message: (e as Error).message } }, ++n));
  } finally {
    clearInterval(keepalive);
    res.end();
  }
}

/** True when the client asks for an event stream (as EventSource does) rather than a document. */
export const wantsEventStream = (accept: string | undefined) => /\btext\/event-stream\b/i.test(accept ?? "");
