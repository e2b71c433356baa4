import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * The front door first: while this process's event loop is saturated and clients crowd it with accepts,
 * a runner's next lease waits `waitMs`, so that accepting — a client waiting for its 202 — is not starved
 * by starting work that waits in a durable queue anyway. One process serves both on one thread; without
 * this a burst of accepts shares the loop evenly with the completions it sets off (BENCHMARKS.md,
 * "accepted/s while processing"). Work still starts, one lease per runner per `waitMs` at least, however
 * long the burst lasts; a loop that is not saturated, or not crowded, never waits.
 *
 * The wait is a fixed slice, not "until the crowd thins out": clients that send their next request as soon
 * as the last is answered empty the door at every group commit, so that signal would let every lease through.
 */
export class FrontDoor {
  private inFlight = 0;
  private sample = { at: performance.now(), elu: performance.eventLoopUtilization(), busy: false };

  constructor(
    private readonly opts: {
      /** Accepts in flight above which the door counts as crowded. */
      crowd: number;
      /** Event-loop utilisation (0-1) at or above which the loop counts as saturated. */
      saturated: number;
      /** How long a lease waits while the door is busy. */
      waitMs: number;
      /** Overrides the loop's own measure (tests). */
      loopBusy?: () => boolean;
    },
  ) {}

  /** Runs one accept through the door (counted while it runs). */
  async through<T>(accept: () => Promise<T>): Promise<T> {
    this.inFlight++;
    try {
      return await accept();
    } finally {
      this.inFlight--;
    }
  }

  /** Resolves at once while the door is not busy, else after `waitMs`. */
  async quiet(): Promise<void> {
    if (this.busy()) await sleep(this.opts.waitMs);
  }

  /** Crowded, and the loop saturated. */
  busy(): boolean {
    return (
      this.inFlight > this.opts.crowd && (this.opts.loopBusy ? this.opts.loopBusy() : this.loopSaturated())
    );
  }

  /** The loop's utilisation over the last window of at least 50 ms (re-measured when asked after that). */
  private loopSaturated(): boolean {
    const now = performance.now();
    if (now - this.sample.at >= 50) {
      const elu = performance.eventLoopUtilization();
      const busy = performance.eventLoopUtilization(elu, this.sample.elu).utilization >= this.opts.saturated;
      this.sample = { at: now, elu, busy };
    }
    return this.sample.busy;
  }
}
