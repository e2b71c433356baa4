import { EventEmitter } from "node:events";
import { coerceError } from "../errors.js";
import type { Coordinator } from "./types.js";

/** A loop that must run in one process of the cluster at a time (autoscaler, sweeper, outbox dispatch). */
export interface ClusterLoop {
  name: string;
  start(): void;
  /** Stops and waits for the pass in progress. */
  stop(): Promise<void>;
}

export interface LeaderEvents {
  "leader:acquired": [];
  "leader:lost": [];
  error: [Error];
}

export interface LeaderOptions {
  /** How often a follower tries to take over, and a leader confirms it still leads. @defaultValue 1000 */
  pollMs: number;
}

/**
 * Runs the registered cluster-wide loops while this process is the leader: polls the backend's
 * `tryLead` every `pollMs`, starts the loops on becoming leader, and stops them when leadership is lost
 * (its database session broke) or on `stop()`, which resigns so that another process takes over at once.
 */
export class Leader extends EventEmitter<LeaderEvents> {
  private readonly loops: ClusterLoop[] = [];
  private leading = false;
  private timer?: NodeJS.Timeout;
  private polling = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly coordinator: Coordinator,
    private readonly o: LeaderOptions,
  ) {
    super();
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Registers a loop; it starts now if this process already leads. */
  register(loop: ClusterLoop): void {
    this.loops.push(loop);
    if (this.leading) loop.start();
  }

  /** Tries to lead at once (a single process leads from its first moment), then every pollMs. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.poll();
    this.timer = setInterval(() => {
      this.polling = this.polling.then(() => this.poll());
    }, this.o.pollMs);
  }

  private async poll(): Promise<void> {
    if (this.stopped) return;
    let lead = false;
    try {
      lead = await this.coordinator.tryLead();
    } catch (e) {
      this.emit("error", coerceError(e));
    }
    if (this.stopped || lead === this.leading) return;
    this.leading = lead;
    if (lead) {
      for (const l of this.loops) l.start();
      this.emit("leader:acquired");
    } else {
      await this.stopLoops();
      this.emit("leader:lost");
    }
  }

  private async stopLoops(): Promise<void> {
    for (const l of [...this.loops].reverse()) {
      await l.stop().catch((e: unknown) => this.emit("error", coerceError(e)));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.polling;
    if (this.leading) {
      this.leading = false;
      await this.stopLoops();
      await this.coordinator.resign().catch((e: unknown) => this.emit("error", coerceError(e)));
    }
  }
}
