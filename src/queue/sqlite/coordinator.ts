import type { Coordinator } from "../types.js";

/**
 * The embedded database serves one process: it always leads, and its own events (the core's) already
 * reach everything in it, so there are no wake-ups to relay.
 */
export class SqliteCoordinator implements Coordinator {
  async tryLead(): Promise<boolean> {
    return true;
  }
  async resign(): Promise<void> {}
  onWake(): void {}
  async close(): Promise<void> {}
}
