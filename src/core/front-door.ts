import { performance } from "node:perf_hooks";

/**
 * The front door first: while this process's event loop is saturated and clients wait for their accepts,
 * the runners' next lease waits a little (at most `maxWaitMs`), so that accepting — a client waiting for
 * its 202 — is not starved by starting work that waits in a durable queue anyway. One process serves both
 * on one thread; without this a burst of accepts and the completions it causes share the loop evenly
 * (measured in BENCHMARKS.md, "accepted/s while processing"). Work still starts at least every
 * `maxWaitMs` per runner, however long the burst lasts; a quiet loop never waits.
 */
export class FrontDoor {
  private inFlight = 0;
  private readonly waiters = new Set<() => void>();
  private sample = { at: performance.now(), elu: performance.eventLoopUtilization(), busy: false };

  constructor(
    private readonly opts: {
      /** Accepts in flight above which the door counts as crowded. */
      crowd: number;
      /** Event-loop utilisation (0-1) at or above which the loop counts as saturated. */
      saturated: number;
      /** The longest a lease waits. */
      maxWaitMs: number;
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
      if (this.inFlight <= this.opts.crowd) this.release();
    }
  }

  /** Resolves at once while the door is not busy; otherwise when it stops being crowded, or after maxWaitMs. */
  quiet(): Promise<void> {
    if (!this.busy()) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, this.opts.maxWaitMs);
      this.waiters.add(done);
    });
  }

  /** Crowded, and the loop saturated. */
  busy(): boolean {
    return this.inFlight > this.opts.crowd && (this.opts.loopBusy ?? (() => this.loopSaturated()))();
  }

  private release(): void {
    for (const done of [...this.waiters]) done();
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
