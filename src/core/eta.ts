/**
 * Estimated finish time of a queued or running invocation, from what the endpoint has shown: the wall time
 * its recent invocations took per input byte (one slot), the work ahead in the queue and in flight, the
 * slots that will take it, and the time an instance took to come into service when none is.
 *
 * A running invocation whose model server reports progress (audio seconds) is estimated from its own pace
 * so far; one without progress, and every queued one, from its input bytes at the endpoint's pace. The
 * queue is treated as a fluid shared by the slots (exact for one slot; close for many similar inputs).
 */
import type { Invocation } from "./types.js";

/** The figures an estimate needs; the core gathers them from the store. */
export interface EtaInputs {
  now: number;
  /** Wall seconds per input byte on one slot, observed on this endpoint; undefined before any finished. */
  secondsPerByte?: number;
  /** Input bytes of the queued invocations ahead (undefined when the invocation is running). */
  bytesAhead?: number;
  /** The endpoint's other running invocations. */
  running: EtaWork[];
  /** Concurrent invocations the endpoint's instances (in service or starting) take; at least 1. */
  slots: number;
  /** Seconds until an instance is in service, when none is now (observed cold start); 0 when one is. */
  coldStartSeconds: number;
}

export type EtaWork = Pick<
  Invocation,
  "state" | "startedAt" | "inputBytes" | "progressSeconds" | "totalSeconds"
>;

/** Seconds of work left on one slot, or undefined when nothing tells. */
function secondsLeft(w: EtaWork, now: number, secondsPerByte: number | undefined): number | undefined {
  const elapsed = w.startedAt !== undefined && w.state === "Running" ? (now - w.startedAt) / 1000 : 0;
  const done = w.progressSeconds ?? 0;
  if (w.state === "Running" && done > 0 && w.totalSeconds !== undefined && w.totalSeconds >= done)
    return (elapsed * (w.totalSeconds - done)) / done;
  if (w.inputBytes === undefined || secondsPerByte === undefined) return undefined;
  return Math.max(0, w.inputBytes * secondsPerByte - elapsed);
}

/**
 * The estimated finish, epoch ms; undefined when the endpoint has not shown its pace yet (nothing finished)
 * and no progress tells.
 */
export function estimateFinish(target: EtaWork, e: EtaInputs): number | undefined {
  const own = secondsLeft(target, e.now, e.secondsPerByte);
  if (own === undefined) return undefined;
  let seconds = own;
  if (target.state === "Queued") {
    if (e.secondsPerByte === undefined) return undefined;
    const inFlight = e.running.reduce((s, w) => s + (secondsLeft(w, e.now, e.secondsPerByte) ?? 0), 0);
    const ahead = (e.bytesAhead ?? 0) * e.secondsPerByte;
    seconds += e.coldStartSeconds + (inFlight + ahead) / Math.max(1, e.slots);
  }
  return e.now + Math.round(seconds * 1000);
}
