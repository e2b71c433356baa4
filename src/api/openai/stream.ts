import type { FastifyReply } from "fastify";

/**
 * OpenAI's streamed transcription (`stream=true`): server-sent events `transcript.text.delta` (`delta`)
 * and a final `transcript.text.done` (`text`, `usage`), whose deltas concatenate to exactly the final text.
 * kikitori's engine does not report partial text, so the deltas are the transcript's segments, sent when the
 * transcription completes; until then SSE comments carry the progress (and keep proxies from timing out).
 */

/** OpenAI's usage for audio billed by duration (whisper-1): whole seconds, rounded up. */
export const durationUsage = (seconds: number) => ({
  type: "duration" as const,
  seconds: Math.ceil(Math.max(0, seconds)),
});

/** The final text cut at the segments' starts: every piece in order, so they join to `text` exactly. */
export function textDeltas(text: string, segments: { text: string }[]): string[] {
  const cuts: number[] = [0];
  let at = 0;
  for (const s of segments.slice(1)) {
    const piece = s.text.trim();
    if (!piece) continue;
    const found = text.indexOf(piece, at + 1);
    if (found < 0) break;
    // The space before a segment belongs to it, as OpenAI's deltas carry their leading space.
    const cut = text[found - 1] === " " ? found - 1 : found;
    if (cut > cuts.at(-1)!) cuts.push(cut);
    at = found;
  }
  return cuts.map((c, i) => text.slice(c, cuts[i + 1] ?? text.length)).filter((d) => d.length > 0);
}

/** An SSE response on the raw socket: Fastify hands the reply over. */
export class EventStream {
  constructor(private readonly reply: FastifyReply) {
    reply.hijack();
    reply.raw.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
  }

  comment(text: string): void {
    this.reply.raw.write(`: ${text.replace(/\n/g, " ")}\n\n`);
  }

  send(data: unknown): void {
    this.reply.raw.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  end(): void {
    this.reply.raw.end();
  }
}

/** The events of a finished transcription (kikitori's json output format). */
export function transcriptEvents(t: {
  text: string;
  duration: number;
  segments: { text: string }[];
}): unknown[] {
  return [
    ...textDeltas(t.text, t.segments).map((delta) => ({ type: "transcript.text.delta", delta })),
    { type: "transcript.text.done", text: t.text, usage: durationUsage(t.duration) },
  ];
}
