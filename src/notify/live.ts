import type { Service } from "../core/service.js";
import { isTerminal, type Invocation } from "../core/types.js";

type View = Invocation & { queuePosition?: number };

/** Resolves after `ms`, or earlier when the invocation finishes or the signal aborts. */
function nap(service: Service, id: string, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      service.off("invocation:finished", onFinished);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const onFinished = (inv: Invocation) => {
      if (inv.id === id) done();
    };
    const timer = setTimeout(done, ms);
    service.on("invocation:finished", onFinished);
    signal?.addEventListener("abort", done);
  });
}

/** How often a waiter re-reads the invocation (state changes other than finishing emit no event). */
const POLL_MS = 250;

/**
 * Long poll: the invocation once its state differs from the state at the call (or it is terminal), or
 * as it is when `waitMs` passes.
 */
export async function waitForChange(
  service: Service,
  id: string,
  waitMs: number,
  signal?: AbortSignal,
): Promise<View> {
  const first = await service.getInvocation(id);
  const deadline = Date.now() + waitMs;
  let cur = first;
  while (!isTerminal(cur.state) && cur.state === first.state && Date.now() < deadline && !signal?.aborted) {
    await nap(service, id, Math.min(POLL_MS, deadline - Date.now()), signal);
    cur = await service.getInvocation(id);
  }
  return cur;
}

export interface LiveEvent {
  event: "queued" | "started" | "progress" | "completed";
  data: Record<string, unknown>;
}

/**
 * The life of one invocation as events: `queued` (each new queue position), `started` (each attempt),
 * `progress` (audio seconds processed, never decreasing), then `completed`, after which it ends.
 */
export async function* invocationEvents(
  service: Service,
  id: string,
  signal?: AbortSignal,
): AsyncGenerator<LiveEvent> {
  let position: number | undefined;
  let attempt = 0;
  let processed = -1;
  while (!signal?.aborted) {
    const inv = await service.getInvocation(id);
    if (inv.state === "Queued" && inv.queuePosition !== position) {
      position = inv.queuePosition;
      yield { event: "queued", data: { inferenceId: id, position } };
    }
    if (inv.startedAt !== undefined && inv.attempts > attempt && inv.state !== "Queued") {
      attempt = inv.attempts;
      position = undefined;
      yield {
        event: "started",
        data: { inferenceId: id, attempt, startedAt: new Date(inv.startedAt).toISOString() },
      };
    }
    if (inv.state === "Running" && inv.progressSeconds !== undefined && inv.progressSeconds > processed) {
      processed = inv.progressSeconds;
      const total = inv.totalSeconds ?? 0;
      yield {
        event: "progress",
        data: {
          inferenceId: id,
          processedSeconds: processed,
          totalSeconds: total,
          percent: total > 0 ? Math.min(100, (100 * processed) / total) : 0,
        },
      };
    }
    if (isTerminal(inv.state)) {
      yield {
        event: "completed",
        data: {
          inferenceId: id,
          state: inv.state,
          outputLocation: inv.state === "Succeeded" ? inv.outputLocation : undefined,
          failureLocation: inv.state === "Succeeded" ? undefined : inv.failureLocation,
          error: inv.error,
          totalMs: inv.finishedAt !== undefined ? inv.finishedAt - inv.createdAt : undefined,
        },
      };
      return;
    }
    await nap(service, id, POLL_MS, signal);
  }
}

/** One server-sent event frame. */
export const sseFrame = (e: LiveEvent, id: number) =>
  `id: ${id}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;

/** Parses a server-sent event stream (for clients: the CLI, tests). */
export async function* readSse(
  body: AsyncIterable<Uint8Array>,
): AsyncGenerator<{ event: string; data: string }> {
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const frame = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
  }
}
