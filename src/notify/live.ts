import type { Service } from "../core/service.js";
import { isTerminal, type Invocation } from "../core/types.js";
import type { InvocationFilter } from "../queue/types.js";

type View = Invocation & { queuePosition?: number };

/** Resolves after `ms`, or earlier when the invocation finishes or the signal aborts. */
function nap(service: Service, id: string, ms: number, signal?: AbortSignal): Promise<void> {
  return napUntil(service, ["invocation:finished"], (inv) => inv.id === id, ms, signal);
}

/** Resolves after `ms`, or earlier when one of `events` passes `wake`, or when the signal aborts. */
function napUntil(
  service: Service,
  events: readonly ("invocation:queued" | "invocation:finished" | "invocation:cancel")[],
  wake: (inv: Invocation) => boolean,
  ms: number,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      for (const e of events) service.off(e, onEvent);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const onEvent = (inv: Invocation) => {
      if (wake(inv)) done();
    };
    const timer = setTimeout(done, ms);
    for (const e of events) service.on(e, onEvent);
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

/** `{eta}` (the estimated finish, ISO) when the core can estimate it, else nothing. */
async function etaOf(service: Service, inv: Invocation): Promise<{ eta?: string }> {
  const eta = await service.estimate(inv);
  return eta === undefined ? {} : { eta: new Date(eta).toISOString() };
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
      yield { event: "queued", data: { inferenceId: id, position, ...(await etaOf(service, inv)) } };
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
          ...(await etaOf(service, inv)),
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

/** How often a list watcher re-reads the list (starts and progress emit no event). */
const LIST_POLL_MS = 250;

/** What a list watcher compares to tell that an invocation changed (not its ever-growing wait time). */
const fingerprint = (v: View) =>
  [v.state, v.queuePosition, v.attempts, v.progressSeconds, v.totalSeconds, v.startedAt, v.finishedAt].join(
    "|",
  );

/**
 * A live list of invocations: `snapshot` (the newest `filter.limit` that match, newest first), then
 * `invocation` for each one that appears or changes (state, queue position, progress, attempts) and
 * `removed` for each one that leaves the list (no longer matches the filter, or pushed off by newer
 * ones). The list is re-read four times a second, and at once when this process queues, finishes
 * or cancels an invocation of the filter; it works across hosts because it reads the store.
 */
export async function* invocationListEvents<T>(
  service: Service,
  filter: InvocationFilter & { limit: number },
  view: (inv: View) => T,
  signal?: AbortSignal,
): AsyncGenerator<{ event: "snapshot" | "invocation" | "removed"; data: unknown }> {
  let shown: Map<string, string> | undefined;
  const matches = (inv: Invocation) =>
    (!filter.endpoint || inv.endpoint === filter.endpoint) &&
    (!filter.state || inv.state === filter.state) &&
    (!filter.principal || inv.principal === filter.principal);
  // Enqueues of this process are reported as they happen: an idle instance may lease one before the
  // next read, and the client would never see it queued.
  const enqueued: Invocation[] = [];
  const onQueued = (inv: Invocation) => {
    if (matches(inv)) enqueued.push(inv);
  };
  service.on("invocation:queued", onQueued);
  try {
    while (!signal?.aborted) {
      if (shown) {
        for (const inv of enqueued.splice(0)) {
          const v = { ...inv, queuePosition: await service.queuePosition(inv.id) };
          if (shown.get(v.id) === fingerprint(v)) continue;
          shown.set(v.id, fingerprint(v));
          yield { event: "invocation", data: view(v) };
        }
      }
      const list: View[] = [];
      for (const inv of await service.listInvocations(filter)) {
        const queuePosition = inv.state === "Queued" ? await service.queuePosition(inv.id) : undefined;
        list.push({ ...inv, queuePosition });
      }
      const now = new Map(list.map((v) => [v.id, fingerprint(v)]));
      if (!shown) {
        enqueued.length = 0;
        yield { event: "snapshot", data: { invocations: list.map(view) } };
      } else {
        // Oldest first, so a client that prepends each new one keeps the newest on top.
        for (const v of [...list].reverse())
          if (shown.get(v.id) !== now.get(v.id)) yield { event: "invocation", data: view(v) };
        for (const id of shown.keys())
          if (!now.has(id)) yield { event: "removed", data: { inferenceId: id } };
      }
      shown = now;
      if (enqueued.length) continue;
      await napUntil(
        service,
        ["invocation:queued", "invocation:finished", "invocation:cancel"],
        (inv) => !filter.endpoint || inv.endpoint === filter.endpoint,
        LIST_POLL_MS,
        signal,
      );
    }
  } finally {
    service.off("invocation:queued", onQueued);
  }
}

/** One server-sent event frame. */
export const sseFrame = (e: { event: string; data: unknown }, id: number) =>
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
